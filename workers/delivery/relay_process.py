"""The outbox relay in a process of its own, supervised by its worker (PostgreSQL; `TICKETFLOW_RELAY`, ADR 17).

A draining worker spent about a third of its CPU relaying, in the event loop its consumers wait on. In a
child process the relay runs on the other core while the consumers work: the inbound worker drained
about 30% more (docs/benchmarks.md). The relay itself is the same `OutboxRelay`; only where it runs
changes. SQLite keeps the relay in the worker's process (one writer; and nothing to gain on one file).

The worker starts `python -m workers.delivery.relay_process WORKER` and talks to it over two pipes:

- to the child, its standard input: one JSON line (the settings, the worker's name, how to log,
  whether a checkpoint hook is installed), then single bytes: `w` (the worker committed outbox rows:
  look now) and `g` (go on past a checkpoint). End of file means stop: the child publishes what is
  committed and exits 0. A worker that dies, even by SIGKILL, closes the pipe, so its relay ends too.
- from the child, its standard output: JSON lines. `{"report": [method, args]}` is a count for the
  worker's metrics (`workers.delivery.report.Report`), `{"reached": [point, where]}` a checkpoint
  (the worker runs its own hook, then answers `g`: a fault harness that kills the worker at
  `after_publish_before_mark_sent` kills it where it always did, and the child, finding its input
  closed, exits without marking), `{"fatal": why}` a permanent failure (the worker stops, as for an
  in-process relay's), `{"ready": pid}` once it relays. Anything the child's libraries print goes to
  standard error, with its logs, which the worker's error stream receives.

A child that exits any other way is started again, with backoff, and counted as a transient relay
failure. Its rows stay in the outbox meanwhile: nothing is lost, events are late.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.delivery import checkpoints
from workers.delivery.backoff import Backoff
from workers.delivery.report import SILENT, Report, Silent

if TYPE_CHECKING:
    from workers.settings import Settings

log = logging.getLogger("ticketflow.relay")

WAKE = b"w"
GO = b"g"
FATAL_EXIT = 3
"""The child's exit status after a permanent failure (it said why on its output first)."""
STOP_SECONDS = 30.0
"""How long a stopping worker waits for its relay to publish what is committed, before killing it."""
STEADY_SECONDS = 60.0
"""A child that relayed this long before it died is restarted after the shortest backoff again."""
REPORTED = frozenset({"relay_published", "relay_failed", "relay_delays", "waiting", "available"})
"""The `Report` methods a child may call in its worker (what a relay reports, and its waits for a dependency)."""
ROOT = str(Path(__file__).resolve().parents[2])
"""The directory that holds the `workers` package: on the child's import path wherever the worker was started."""


def config_line(settings: Settings, owner: str, hooked: bool, log_level: int, log_format: str) -> bytes:
    """The first line a child reads: everything it needs, secrets included (a pipe, never the command line)."""
    values = settings.model_dump(mode="json")
    if settings.kafka_password is not None:
        values["kafka_password"] = settings.kafka_password.get_secret_value()
    return json.dumps({"owner": owner, "settings": values, "hooked": hooked,
                       "log": {"level": log_level, "format": log_format}}).encode() + b"\n"


def message(kind: str, value: Any) -> bytes:
    """One line from the child to its worker."""
    return json.dumps({kind: value}, separators=(",", ":")).encode() + b"\n"


class RelayProcess:
    """The worker's side: starts the child, wakes it, applies what it reports, restarts it, stops it."""

    def __init__(self, settings: Settings, owner: str, on_fatal: Callable[[str], None] | None = None,
                 report: Report = SILENT, stop_seconds: float = STOP_SECONDS, restarts: Backoff | None = None,
                 on_state: Callable[[bool, str], None] | None = None) -> None:
        self.settings = settings
        self.on_state = on_state or (lambda _up, _detail: None)
        """Told (up, why) when a child starts relaying and when one ends: the worker's readiness."""
        self.owner = owner
        self.on_fatal = on_fatal
        self.report = report
        self.stop_seconds = stop_seconds
        self._backoff = restarts or Backoff(0.5, 10.0)
        self.restarts = 0
        """How many times a child that died was started again."""
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._fatal: str | None = None
        self._ready = asyncio.Event()
        self._stop_requested = asyncio.Event()

    @property
    def pid(self) -> int | None:
        """The running child's process id (None between a death and its restart)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    async def ready(self) -> int:
        """Wait until a child relays; returns its process id."""
        while True:
            await self._ready.wait()
            pid = self.pid
            if pid is not None:
                return pid
            self._ready.clear()

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"outbox-relay-process-{self.owner}")

    def notify(self) -> None:
        """Called after a commit that wrote outbox rows: the child looks now rather than at its next poll."""
        self._send(WAKE)

    async def stop(self) -> None:
        """Close the child's input (it publishes what is committed and exits), wait for it, at most
        `stop_seconds`; then kill it."""
        self._stopping = True
        self._stop_requested.set()
        self._close_input()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self.stop_seconds)
        except TimeoutError:
            log.warning("outbox relay process of %s did not stop within %.0fs: killed", self.owner, self.stop_seconds)
            proc = self._proc
            if proc is not None and proc.returncode is None:
                proc.kill()
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _supervise(self) -> None:
        backoff = self._backoff
        while not self._stopping:
            started = time.monotonic()
            try:
                proc = await self._spawn()
            except OSError as exc:
                self._fatal = f"outbox relay process of {self.owner} could not be started: {exc!r}"
                log.critical(self._fatal)
                if self.on_fatal is not None:
                    self.on_fatal(self._fatal)
                return
            if self._stopping:
                self._close_input()
            try:
                await self._follow(proc)
            finally:
                code = await proc.wait()
                self._ready.clear()
            self.on_state(False, f"relay process exited with status {code}")
            if self._stopping or self._fatal is not None:
                if code not in (0, FATAL_EXIT) and not self._stopping:
                    log.error("outbox relay process of %s exited with status %s", self.owner, code)
                return
            self.restarts += 1
            self.report.relay_failed("transient")
            if time.monotonic() - started > STEADY_SECONDS:
                backoff.reset()
            log.error("outbox relay process of %s (pid %s) exited with status %s; starting another in %.1fs "
                      "(its rows wait in the outbox)", self.owner, proc.pid, code, backoff.delay)
            try:  # a stop ends the wait
                await asyncio.wait_for(self._stop_requested.wait(), backoff.next_delay())
            except TimeoutError:
                pass

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.delivery.relay_process", self.owner, env=env,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=8 * 1024 * 1024)
        assert proc.stdin is not None
        root = logging.getLogger()
        proc.stdin.write(config_line(self.settings, self.owner, checkpoints.installed(),
                                     root.getEffectiveLevel(), current_log_format()))
        self._proc = proc
        return proc

    async def _follow(self, proc: asyncio.subprocess.Process) -> None:
        """Apply the child's lines until its output ends."""
        assert proc.stdout is not None
        async for line in proc.stdout:
            try:
                (kind, value), = json.loads(line).items()
            except (ValueError, AttributeError):
                log.warning("outbox relay process of %s wrote a line it should not have: %r", self.owner, line[:200])
                continue
            self._apply(kind, value)

    def _apply(self, kind: str, value: Any) -> None:
        if kind == "report":
            method, args = value
            if method in REPORTED:
                getattr(self.report, method)(*args)
        elif kind == "reached":
            point, where = value
            checkpoints.reached(point, where)  # a fault harness may end this process here
            self._send(GO)
        elif kind == "ready":
            self._ready.set()
            self.on_state(True, f"relay process {value}")
        elif kind == "fatal":
            self._fatal = str(value)
            if self.on_fatal is not None:
                self.on_fatal(self._fatal)

    def _send(self, data: bytes) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None or proc.stdin.is_closing():
            return
        try:
            proc.stdin.write(data)
        except (BrokenPipeError, ConnectionResetError, RuntimeError):
            pass  # the child is gone: the supervisor starts another, which reads the outbox anyway

    def _close_input(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None and not proc.stdin.is_closing():
            proc.stdin.close()


def current_log_format() -> str:
    from workers.observability.logs import current_format

    return current_format()


# ---------------------------------------------------------------------------------------------- the child


class Forwarded(Silent):
    """The child's `Report`: a relay's counts go to the worker, whose metrics an operator scrapes."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send

    def relay_published(self, count: int) -> None:
        self._send(message("report", ["relay_published", [count]]))

    def relay_failed(self, kind: str, count: int = 1) -> None:
        self._send(message("report", ["relay_failed", [kind, count]]))

    def relay_delays(self, delays: Iterable[float]) -> None:
        self._send(message("report", ["relay_delays", [[round(d, 6) for d in delays]]]))

    def waiting(self, dependency: str, retry: bool = True) -> None:
        self._send(message("report", ["waiting", [dependency, retry]]))

    def available(self, dependency: str) -> None:
        self._send(message("report", ["available", [dependency]]))


class Commands:
    """The child's input, read by a thread: wakes go to the event loop, answers to a waiting checkpoint."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int = 0) -> None:
        self.loop = loop
        self.fd = fd
        self.wake: Callable[[], None] = lambda: None
        self.ended = asyncio.Event()
        self.answers: queue.SimpleQueue[bool] = queue.SimpleQueue()

    def start(self) -> None:
        threading.Thread(target=self._read, name="relay-commands", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                data = b""
            if not data:
                self.answers.put(False)
                self.loop.call_soon_threadsafe(self.ended.set)
                return
            for _ in range(data.count(GO)):
                self.answers.put(True)
            if WAKE in data:
                self.loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.wake()

    def checkpoint(self, send: Callable[[bytes], None]) -> checkpoints.Hook:
        """The hook of a child whose worker has one: ask the worker, and wait for its answer. No answer (the
        worker died there) ends the child at once, before it records anything."""
        def hook(point: str, where: str) -> None:
            send(message("reached", [point, where]))
            if not self.answers.get():
                os._exit(1)
        return hook


def read_config(fd: int = 0) -> dict[str, Any]:
    """The first line of the input, read a byte at a time so nothing after it is taken from the pipe."""
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            raise SystemExit(0)  # the worker went away before it said anything
        line += byte
    config: dict[str, Any] = json.loads(line)
    return config


async def _relay(config: dict[str, Any], send: Callable[[bytes], None]) -> int:
    from storage.database import create_engine
    from workers.delivery.backoff import until_available
    from workers.delivery.relay import PRODUCER_BATCH_BYTES, OutboxRelay
    from workers.settings import Settings

    settings = Settings(**config["settings"])
    owner: str = config["owner"]
    report = Forwarded(send)
    commands = Commands(asyncio.get_running_loop())
    if config.get("hooked"):
        checkpoints.install(commands.checkpoint(send))
    commands.start()
    fatal: list[str] = []

    def on_fatal(why: str) -> None:
        fatal.append(why)
        send(message("fatal", why))
        commands.ended.set()

    async def start_producer() -> Any:
        return await settings.kafka.started_producer(f"ticketflow-{owner}-relay", max_batch_size=PRODUCER_BATCH_BYTES)

    engine = create_engine(settings.database_url)
    starting = asyncio.ensure_future(until_available(start_producer, "Kafka", log, report=report))
    ended = asyncio.ensure_future(commands.ended.wait())
    try:
        await asyncio.wait({starting, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            await engine.dispose()
            return 0
        try:
            producer = starting.result()
        except Exception as exc:  # not a wait: refused for good (a bad credential, a missing CA file)
            on_fatal(f"outbox relay process of {owner} could not start its producer: {exc!r}")
            await engine.dispose()
            return FATAL_EXIT
        relay = OutboxRelay(engine, producer, owner, settings.relay_interval_seconds, on_fatal=on_fatal, report=report)
        commands.wake = relay.notify
        relay.start()
        send(message("ready", os.getpid()))
        await ended
        try:
            await relay.stop()
        except Exception as exc:
            log.warning("relay %s could not flush on stop: %r", owner, exc)
        await producer.stop()
        await engine.dispose()
    finally:
        ended.cancel()
    return FATAL_EXIT if fatal else 0


def main() -> int:
    """The child: `python -m workers.delivery.relay_process WORKER`, started by its worker only."""
    # A terminal's Ctrl-C and systemd's stop signal the whole process group; the child's stop is its
    # worker's to give (its input closes), after the worker's consumers have finished.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.dup(1)
    os.dup2(2, 1)  # a stray print must not pass for a message to the worker
    config = read_config()
    from workers.observability.logs import configure_logging, log_fields

    configure_logging(config["log"]["level"], config["log"]["format"])
    lock = threading.Lock()

    def send(data: bytes) -> None:
        with lock:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view):]

    # its lines share the worker's stderr: each says whose relay process wrote it (`worker`, and `process`)
    with log_fields(worker=config["owner"], process="relay"):
        return asyncio.run(_relay(config, send))


if __name__ == "__main__":
    sys.exit(main())
