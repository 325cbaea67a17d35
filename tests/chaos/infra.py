"""The chaos run's own Kafka (one node, or a three-node cluster) and PostgreSQL, on ports and in a run
folder of their own, driven through the project's launchers (deploy/kafka/kafka.sh,
deploy/postgres/postgres.sh). The shared servers other tests use are never touched."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy/kafka/kafka.sh"
POSTGRES_SH = REPO / "deploy/postgres/postgres.sh"


class InfraError(RuntimeError):
    """A launcher failed: the run cannot go on."""


@dataclass(frozen=True)
class Ports:
    kafka: int = 19392
    """Single node broker; its controller listens on the next port."""
    cluster_base: int = 19492
    """Cluster brokers on base..base+2, controllers on base+100..base+102."""
    postgres: int = 55632


async def command(argv: list[str], env: dict[str, str], timeout: float) -> str:
    """Run a command in the repository; its stdout, or InfraError with the end of its output."""
    what = " ".join([Path(argv[0]).name, *argv[1:]])[:200]
    proc = await asyncio.create_subprocess_exec(*argv, env=env, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise InfraError(f"{what} did not finish within {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise InfraError(f"{what} exited {proc.returncode}: {(out + err).decode()[-1500:]}")
    return out.decode()


async def launcher(script: Path, *args: str, env: dict[str, str], timeout: float = 180.0) -> str:
    """Run a launcher command (deploy/kafka/kafka.sh, deploy/postgres/postgres.sh)."""
    return await command([str(script), *args], env, timeout)


async def cancel(task: asyncio.Task[None] | None) -> None:
    """Cancel a background task of the run and wait until it has stopped."""
    if task is not None:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def _pid_alive(pid: int, needle: str) -> bool:
    """Whether `pid` is alive and its command line contains `needle` (guards against a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return needle in cmdline


async def _wait_gone(pid: int, needle: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid, needle):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


class Kafka:
    """`mode` "single": one node; "cluster": three nodes (topics at replication factor 3, min ISR 2)."""

    def __init__(self, mode: str, run_dir: Path, ports: Ports) -> None:
        if mode not in ("single", "cluster"):
            raise ValueError(f"kafka mode must be single or cluster, not {mode!r}")
        self.mode = mode
        self.run_dir = run_dir
        self.ports = ports
        self.env = {**os.environ, "TICKETFLOW_RUN_DIR": str(run_dir),
                    "KAFKA_PORT": str(ports.kafka), "KAFKA_CONTROLLER_PORT": str(ports.kafka + 1),
                    "KAFKA_CLUSTER_BASE_PORT": str(ports.cluster_base),
                    "KAFKA_CLUSTER_CONTROLLER_BASE_PORT": str(ports.cluster_base + 100)}
        self.env.pop("KAFKA_BOOTSTRAP", None)

    @property
    def replication_factor(self) -> int:
        return 3 if self.mode == "cluster" else 1

    @property
    def bootstrap(self) -> str:
        if self.mode == "single":
            return f"127.0.0.1:{self.ports.kafka}"
        return ",".join(f"127.0.0.1:{self.ports.cluster_base + i}" for i in range(3))

    @property
    def home(self) -> Path:
        return self.run_dir / (f"kafka-{self.ports.kafka}" if self.mode == "single" else "kafka-cluster")

    def node_dir(self, node: int) -> Path:
        return self.home / f"node-{node}" if self.mode == "cluster" else self.home

    async def start_fresh(self) -> None:
        """Stop what a previous run may have left, wipe its data, start empty."""
        await self.stop()
        shutil.rmtree(self.home, ignore_errors=True)
        await self.start()

    async def start(self) -> None:
        await launcher(KAFKA_SH, "start" if self.mode == "single" else "cluster-start", env=self.env, timeout=240)

    async def stop(self) -> None:
        await launcher(KAFKA_SH, "stop" if self.mode == "single" else "cluster-stop", env=self.env, timeout=240)

    async def wipe_data(self) -> None:
        """After the run: drop the logs' data, keep kafka.log for reading."""
        for node in (1, 2, 3) if self.mode == "cluster" else (1,):
            shutil.rmtree(self.node_dir(node) / "data", ignore_errors=True)

    def node_pid(self, node: int) -> int | None:
        try:
            pid = int((self.node_dir(node) / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid, "kafka.Kafka") else None

    async def stop_node(self, node: int) -> None:
        """SIGTERM (a controlled shutdown) for one cluster node, SIGKILL after 60 s."""
        pid = self.node_pid(node)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        if not await _wait_gone(pid, "kafka.Kafka", 60):
            os.kill(pid, signal.SIGKILL)
            await _wait_gone(pid, "kafka.Kafka", 30)

    async def kill_node(self, node: int) -> None:
        await launcher(KAFKA_SH, "cluster-kill-node", str(node), env=self.env)

    async def start_node(self, node: int) -> None:
        await launcher(KAFKA_SH, "cluster-start-node", str(node), env=self.env, timeout=240)

    async def busiest_leader(self, topics: list[str]) -> int:
        """The cluster node that leads most partitions of `topics` (the one whose loss hurts most)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        leaders = Counter(p["leader"] for t in described for p in t.get("partitions", ()) if p["leader"] >= 0)
        return leaders.most_common(1)[0][0] if leaders else 1


class Postgres:
    """A PostgreSQL of the run's own; each run uses a database of its own in it."""

    def __init__(self, run_dir: Path, ports: Ports) -> None:
        self.port = ports.postgres
        self.run_dir = run_dir
        self.env = {**os.environ, "PG_PORT": str(self.port), "TICKETFLOW_RUN_DIR": str(run_dir)}

    def url(self, database: str = "ticketflow") -> str:
        return f"postgresql+asyncpg://ticketflow:ticketflow@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "ticketflow") -> str:
        return f"postgresql://ticketflow:ticketflow@127.0.0.1:{self.port}/{database}"

    async def start(self) -> None:
        """Start; after a SIGKILL the old backends may still hold shared memory for a moment: retried."""
        deadline = time.monotonic() + 60
        while True:
            try:
                await launcher(POSTGRES_SH, "start", env=self.env, timeout=120)
                return
            except InfraError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)

    async def stop_fast(self) -> None:
        """`pg_ctl stop -m fast`: every session is terminated."""
        await launcher(POSTGRES_SH, "stop", env=self.env, timeout=120)

    def postmaster_pid(self) -> int | None:
        pid_file = self.run_dir / f"postgres-{self.port}" / "data" / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if _pid_alive(pid, "postgres") else None

    async def kill(self) -> None:
        """SIGKILL the postmaster (the next start runs crash recovery); waits until it is gone."""
        pid = self.postmaster_pid()
        if pid is None:
            raise InfraError("no postmaster to kill")
        os.kill(pid, signal.SIGKILL)
        await _wait_gone(pid, "postgres", 30)

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    async def drop_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
