"""Workers as separate processes, on topics and groups of their own: what the fault tests kill,
pause and restart (`ticketflow worker NAME`, exactly as an operator runs it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from tests.support.kafka import Probe, settle
from tests.support.system import WATCHED, System
from ticketflow.provisioning import apply_topics
from workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]


async def isolated(system: System) -> tuple[Settings, System]:
    """Settings with topics and groups of their own, so a separately run worker does not meet the session's."""
    settings = system.settings.model_copy(update=dict(topic_prefix=f"{system.settings.topic_prefix}iso-{uuid.uuid4().hex[:8]}."))
    await apply_topics(settings)
    probe = Probe(settings.bootstrap_servers, [settings.topic(t) for t in WATCHED])
    await probe.start()
    return settings, System(settings, system.engine, probe)


def worker_process(settings: Settings, name: str, fault: str = "", **env: str) -> subprocess.Popen[bytes]:
    """`ticketflow worker NAME` as a child process with these settings (stderr kept for failure messages);
    with `fault` (`point:where[:N]`, see tests.support.faulty_worker) it exits at that checkpoint."""
    full = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "DATABASE_URL": settings.database_url,
            "TICKETFLOW_TOPIC_PREFIX": settings.topic_prefix, "TICKETFLOW_FAULT": fault, **env}
    module = "tests.support.faulty_worker" if fault else "ticketflow.cli"
    # stderr goes to a file, never a pipe: nobody reads a pipe while the worker runs, and a worker that
    # logs 64 KiB (a broker or database down for a while) would block on its next log line and stop.
    log = tempfile.NamedTemporaryFile(prefix=f"ticketflow-test-{name}-", suffix=".log", delete=False)  # noqa: SIM115
    with log:
        proc = subprocess.Popen([sys.executable, "-m", module, "worker", name], cwd=REPO, env=full,
                                stdout=subprocess.DEVNULL, stderr=log)
    proc.stderr = open(log.name, "rb")  # noqa: SIM115  (the log so far, for failure messages)
    return proc


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float = 90.0) -> int:
    for _ in range(int(timeout * 10)):
        if proc.poll() is not None:
            return proc.returncode
        await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("the worker did not exit")


async def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        await wait_exit(proc)


async def caught_up(iso: System, worker: str, purpose: str, topic: str) -> None:
    """Wait until the group of `worker`'s input `purpose` has committed everything on `topic`, outbox empty."""
    await settle(iso.settings.bootstrap_servers, [(iso.settings.group(worker, purpose), iso.settings.topic(topic))],
                 also_quiet=iso._outbox_empty)


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (a worker's relay process, ADR 17)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
