"""The worker processes of a chaos run, handled by pid: started, killed, paused, armed at a checkpoint,
and restarted at once whenever the main replica dies (a supervisor with restart=always and no delay),
under the same `TICKETFLOW_INSTANCE_ID` (static group membership, as deployed).
An exit the run did not cause is recorded with the end of the worker's log: it is a finding."""

from __future__ import annotations

import asyncio
import ctypes
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.chaos.armed_worker import ARM_ENV
from tests.chaos.infra import REPO, cancel

WORKERS = ("inbound", "ticketing", "sync")
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it if the harness dies, so no worker outlives a run."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


@dataclass
class Proc:
    name: str
    replica: int
    popen: subprocess.Popen[bytes]
    arm: Path
    log: Path
    started: float = field(default_factory=time.time)
    doomed: bool = False
    """Its exit is a fault the run injected, not a finding."""
    paused: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Exit:
    name: str
    replica: int
    status: int
    at: float
    expected: bool
    log_tail: str = ""


class Fleet:
    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.procs: dict[tuple[str, int], Proc] = {}
        self.exits: list[Exit] = []
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._starts = 0

    def start(self, name: str, replica: int = 0) -> Proc:
        log = self.folder / f"{name}-{replica}.log"
        self._starts += 1
        arm = self.folder / f"{name}-{replica}.{self._starts}.arm"
        arm.write_text("")
        with log.open("ab") as out:
            out.write(f"=== chaos: starting {name} replica {replica} at {time.time():.3f}\n".encode())
            popen = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.armed_worker", "worker", name], cwd=REPO,
                env={**self.env, ARM_ENV: str(arm), "TICKETFLOW_INSTANCE_ID": instance_id(name, replica, self._starts)},
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                preexec_fn=_die_with_parent)
        proc = Proc(name, replica, popen, arm, log)
        self.procs[(name, replica)] = proc
        return proc

    def start_all(self) -> None:
        for name in WORKERS:
            self.start(name)
        self._task = asyncio.create_task(self._supervise(), name="chaos-supervisor")

    def get(self, name: str, replica: int = 0) -> Proc | None:
        return self.procs.get((name, replica))

    async def kill(self, proc: Proc) -> float:
        """SIGKILL; returns when it is dead (the time of death)."""
        proc.doomed = True
        if proc.paused:
            proc.paused = False
        try:
            proc.popen.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        while proc.alive:
            await asyncio.sleep(0.02)
        return time.time()

    def terminate(self, proc: Proc) -> None:
        """SIGTERM (the worker finishes the message in hand and leaves its groups); not waited for."""
        proc.doomed = True
        if proc.alive:
            proc.popen.send_signal(signal.SIGTERM)

    def pause(self, proc: Proc) -> None:
        proc.paused = True
        proc.popen.send_signal(signal.SIGSTOP)

    def resume(self, proc: Proc) -> None:
        proc.paused = False
        if proc.alive:
            proc.popen.send_signal(signal.SIGCONT)

    def arm(self, proc: Proc, spec: str) -> None:
        """Arm `point:where[:N]`: the worker SIGKILLs itself there (see tests.chaos.armed_worker)."""
        proc.doomed = True
        proc.arm.write_text(spec)
        proc.popen.send_signal(signal.SIGUSR1)

    def disarm(self, proc: Proc) -> bool:
        """Disarm; False when the checkpoint was reached meanwhile."""
        proc.arm.write_text("")
        if proc.alive:
            proc.popen.send_signal(signal.SIGUSR1)
        tripped = Path(f"{proc.arm}.tripped").exists()
        if not tripped:
            proc.doomed = False
        return not tripped

    def tripped_at(self, proc: Proc) -> float | None:
        """When the armed checkpoint was reached (None: not reached)."""
        try:
            return float(Path(f"{proc.arm}.tripped").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            return None

    async def restarted(self, name: str, after: float, timeout: float = 60.0) -> Proc | None:
        """The main replica started after `after` (the supervisor restarts it within ~0.1 s of its death)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self.get(name)
            if proc is not None and proc.started > after and proc.alive:
                return proc
            await asyncio.sleep(0.05)
        return None

    async def _supervise(self) -> None:
        while not self._closing:
            for key, proc in list(self.procs.items()):
                status = proc.popen.poll()
                if status is None:
                    continue
                del self.procs[key]
                tail = "" if proc.doomed else _tail(proc.log)
                self.exits.append(Exit(proc.name, proc.replica, status, time.time(), proc.doomed, tail))
                if proc.replica == 0 and not self._closing:
                    self.start(proc.name)
            await asyncio.sleep(0.05)

    def unexpected_exits(self) -> list[Exit]:
        return [e for e in self.exits if not e.expected]

    async def close(self) -> None:
        """SIGCONT what is paused, SIGTERM everything, SIGKILL what is still alive after 30 s."""
        self._closing = True
        await cancel(self._task)
        procs = list(self.procs.values())
        for proc in procs:
            if proc.alive:
                proc.popen.send_signal(signal.SIGCONT)
                proc.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while any(p.alive for p in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        for proc in procs:
            if proc.alive:
                proc.popen.send_signal(signal.SIGKILL)
            proc.popen.wait()


def instance_id(name: str, replica: int, start: int) -> str:
    """Static membership as a deployment gives it (ADR 13): the main replica, restarted in place, keeps
    its name, like a container restarted in its pod; every second replica is a new pod with a new one."""
    return f"chaos-{name}-0" if replica == 0 else f"chaos-{name}-{replica}-{start}"


def _tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
