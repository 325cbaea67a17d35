"""A PostgreSQL and a Kafka broker of a test's own, on ports of their own, started and stopped by the
project's launchers: for tests that stop, kill or delay them (the shared ones stay untouched)."""

from __future__ import annotations

import asyncio
import glob
import os
import signal
import socket
from pathlib import Path

from tools.ports import free_port

__all__ = ["free_port"]  # tests import it from here, with the services that use it

REPO = Path(__file__).resolve().parents[2]


def port_free(port: int) -> bool:
    """Nothing bound to `port` and nothing answering on it."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) != 0


def free_cluster_base(first: int, start: int, stride: int) -> int:
    """A base port with base..base+2 (brokers) and base+100..base+102 (controllers) all free: `first`,
    else `start + 10 * i` for i stepping by `stride` (each suite its own range, so suites running at the
    same time on one machine do not pick the same one)."""
    for base in [first] + [start + 10 * i for i in range(1, 2000, stride)]:
        if all(port_free(p) for p in (*range(base, base + 3), *range(base + 100, base + 103))):
            return base
    raise AssertionError("no free port range for a three-node cluster")


class PrivatePostgres:
    """`deploy/postgres/postgres.sh` on its own port and run dir."""

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        self.run_dir = run_dir
        self.port = port or free_port()
        self.env = {**os.environ, "PG_PORT": str(self.port), "TICKETFLOW_RUN_DIR": str(run_dir)}

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://ticketflow:ticketflow@127.0.0.1:{self.port}/ticketflow"

    async def _script(self, action: str) -> str:
        proc = await asyncio.create_subprocess_exec(str(REPO / "deploy/postgres/postgres.sh"), action, env=self.env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        assert proc.returncode == 0, f"postgres.sh {action}: {err.decode()[-2000:]}"
        return out.decode()

    async def start(self) -> None:
        await self._script("start")

    async def stop_fast(self) -> None:
        """pg_ctl stop -m fast: sessions are terminated ("terminating connection due to administrator command")."""
        await self._script("stop")

    async def start_refusing(self) -> None:
        """Start it as a standby without hot standby: it runs, and refuses every connection with SQLSTATE 57P03
        ("the database system is not accepting connections" / "is starting up") until `stop_fast`."""
        data = self.run_dir / f"postgres-{self.port}" / "data"
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        await self._as_postgres("touch", str(data / "standby.signal"))
        await self._as_postgres(f"{bindir}/pg_ctl", "start", "-D", str(data), "-w", "-t", "60",
                                "-l", str(data.parent / "postgres.log"), "-o", "-c hot_standby=off")
        self._refusing = data / "standby.signal"

    async def stop_refusing(self) -> None:
        """Stop the refusing standby and make the next `start` a normal one."""
        data = self.run_dir / f"postgres-{self.port}" / "data"
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        await self._as_postgres(f"{bindir}/pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w")
        await self._as_postgres("rm", "-f", str(data / "standby.signal"))

    @staticmethod
    async def _as_postgres(*cmd: str) -> None:
        proc = await asyncio.create_subprocess_exec("runuser", "-u", "postgres", "--", *cmd, cwd="/",
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _out, err = await proc.communicate()
        assert proc.returncode == 0, f"{' '.join(cmd)}: {err.decode()[-1500:]}"

    async def kill(self) -> None:
        """SIGKILL the postmaster: the next start runs crash recovery ("the database system is starting up").
        Returns once it is gone and its backends, which notice their postmaster's death, have left."""
        pid_file = self.run_dir / f"postgres-{self.port}" / "data" / "postmaster.pid"
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)


class PrivateKafka:
    """`deploy/kafka/kafka.sh` single node on its own port and run dir."""

    def __init__(self, run_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.env = {**os.environ, "KAFKA_PORT": str(self.port), "KAFKA_CONTROLLER_PORT": str(free_port()),
                    "TICKETFLOW_RUN_DIR": str(run_dir)}

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _script(self, action: str) -> None:
        proc = await asyncio.create_subprocess_exec(str(REPO / "deploy/kafka/kafka.sh"), action, env=self.env,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _out, err = await proc.communicate()
        assert proc.returncode == 0, f"kafka.sh {action}: {err.decode()[-2000:]}"

    async def start(self) -> None:
        await self._script("start")

    async def stop(self) -> None:
        await self._script("stop")
