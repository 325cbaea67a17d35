"""Processes the benchmark starts (workers, passthrough programs) and what /proc says about them:
CPU time (user + sys, /proc/PID/stat) and peak resident memory (VmHWM, /proc/PID/status).
Also the machine's own load, so a reader can tell a quiet run from a noisy one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stat:
    """What /proc/PID/stat says of a process: its command name, its parent, its CPU seconds so far."""

    comm: str
    ppid: int
    cpu_seconds: float


def stat_of(pid: int | str) -> Stat | None:
    """/proc/PID/stat read (None when the process is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return Stat(comm=stat[stat.find("(") + 1:stat.rfind(")")], ppid=int(fields[1]),
                cpu_seconds=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS)  # utime, stime (14 and 15)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of `pid` (None when it is gone)."""
    found = stat_of(pid)
    return None if found is None else found.cpu_seconds


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of `pid`, in kB ({} when it is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                out[name] = int(rest.split()[0])
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (a worker's outbox relay process, ADR 17)."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return found


@dataclass(frozen=True)
class CpuTimes:
    """Jiffies of the whole machine since boot, from /proc/stat: busy (user, nice, system, irq, softirq),
    stolen (the hypervisor ran another tenant while this machine had work: it shows as neither busy
    nor idle here, and as a slower machine to every process), and the total of every column."""

    busy: float
    stolen: float
    total: float


def machine_busy() -> CpuTimes:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice (guest time is in user already)
    user, nice, system, _idle, _iowait, irq, softirq, steal = (parts + [0] * 8)[:8]
    return CpuTimes(busy=float(user + nice + system + irq + softirq), stolen=float(steal),
                    total=float(sum(parts[:8])))


def shares(before: CpuTimes, after: CpuTimes) -> tuple[float, float]:
    """(busy %, stolen %) of the machine between two readings."""
    total = max(1.0, after.total - before.total)
    return round(100 * (after.busy - before.busy) / total, 1), round(100 * (after.stolen - before.stolen) / total, 1)


PARTS = ("workers", "broker", "postgresql", "benchmark")
"""What shares the machine with the workers in a run, each summed over its processes (`cpu_by_part`)."""


def cpu_by_part(workers: set[int]) -> dict[str, float]:
    """CPU seconds used so far by every live process on the machine, summed by what it is: `workers` (the
    pids given and their children: relay processes), `broker` (a `java` whose command line names Kafka),
    `postgresql` (every `postgres` process: server and backends), `benchmark` (this process: the load
    generator and the consumer that sees the events). Two readings give a window's shares; a process that
    ended inside the window takes its CPU with it (a part may read low, never high)."""
    out = dict.fromkeys(PARTS, 0.0)
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = stat_of(entry.name)
        if found is None:
            continue
        pid = int(entry.name)
        if pid in workers or found.ppid in workers:
            part = "workers"
        elif pid == me:
            part = "benchmark"
        elif found.comm == "postgres":
            part = "postgresql"
        elif found.comm == "java" and _names_kafka(entry):
            part = "broker"
        else:
            continue
        out[part] += found.cpu_seconds
    return out


def _names_kafka(entry: Path) -> bool:
    try:
        return b"kafka" in (entry / "cmdline").read_bytes()
    except OSError:
        return False


def part_shares(before: dict[str, float], after: dict[str, float], machine_before: CpuTimes,
                machine_after: CpuTimes) -> dict[str, float]:
    """Each part's share of the machine between two readings, in % of all its cores (as `busy %`), and
    `other`: what the machine was busy with besides them (the kernel's own work, other tenants' processes)."""
    total = max(1.0, machine_after.total - machine_before.total)
    out = {part: round(100 * (after[part] - before.get(part, 0.0)) * CLOCK_TICKS / total, 1) for part in PARTS}
    busy = 100 * (machine_after.busy - machine_before.busy) / total
    out["other"] = round(max(0.0, busy - sum(out.values())), 1)
    return out


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


PY_SPY = Path(sys.executable).with_name("py-spy")


class Profiler:
    """py-spy sampling one process (by pid) into a collapsed-stack file, for the measured window only."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [str(PY_SPY), "record", "--pid", str(pid), "--rate", "100", "--nonblocking", "--format", "raw",
             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def hot_spots(collapsed: Path, top: int = 12) -> dict[str, object]:
    """The functions with the most samples at the top of the stack (self) and anywhere on it (total),
    from a py-spy raw (collapsed) file: where a worker's time goes."""
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    samples = 0
    try:
        lines = collapsed.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        samples += count
        frames = [_frame(f) for f in stack.split(";")]
        own[frames[-1][0]] = own.get(frames[-1][0], 0) + count
        for frame in {name for name, ours in frames if ours}:
            total[frame] = total.get(frame, 0) + count
    if not samples:
        return {}

    def ranked(table: dict[str, int]) -> list[str]:
        best = sorted(table.items(), key=lambda item: -item[1])[:top]
        return [f"{100 * n / samples:5.1f}% {name}" for name, n in best]

    return {"samples": samples, "self": ranked(own), "project_total": ranked(total), "file": str(collapsed)}


PROJECT = ("contracts", "workers", "storage", "ticketflow", "readmodel")


def _frame(frame: str) -> tuple[str, bool]:
    """`function (path/to/file.py:123)` -> (`function (package/file.py)`, whether it is Ticketflow's own
    code): one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    parts = Path(where.rstrip(")").rsplit(":", 1)[0]).parts
    if "site-packages" in parts:
        return f"{name} ({'/'.join(parts[parts.index('site-packages') + 1:])})", False
    ours = next((i for i, part in enumerate(parts) if part in PROJECT), None)
    if ours is not None:
        return f"{name} ({'/'.join(parts[ours:])})", True
    return f"{name} ({'/'.join(parts[-2:])})", False


@dataclass
class Proc:
    """One process the benchmark started."""

    name: str
    process: asyncio.subprocess.Process
    log: Path
    started: float = field(default_factory=time.monotonic)
    cpu_mark: float = 0.0
    cpu_window: float | None = None
    peak_rss_kb: int = 0
    exit_code: int | None = None
    profiler: Profiler | None = None
    reported: list[dict[str, object]] = field(default_factory=list)
    child_marks: dict[int, float] = field(default_factory=dict)
    child_cpu: float = 0.0
    child_peak_rss_kb: dict[int, int] = field(default_factory=dict)
    """Its children (a worker's relay process): their CPU counts as the worker's, their memory is shown apart."""

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.returncode is None

    def mark(self, profile: Path | None = None) -> None:
        """Start of the measured window: remember the CPU time used so far (and start py-spy into `profile`)."""
        self.cpu_mark = cpu_seconds(self.pid) or 0.0
        self.child_marks = {child: cpu_seconds(child) or 0.0 for child in children(self.pid)}
        if profile is not None and PY_SPY.exists() and self.profiler is None:
            self.profiler = Profiler(self.pid, profile)

    def sample(self) -> None:
        """End of the measured window: CPU used in it, and the peak RSS so far."""
        now = cpu_seconds(self.pid)
        self.child_cpu = 0.0
        for child in children(self.pid):
            self.child_cpu += (cpu_seconds(child) or 0.0) - self.child_marks.get(child, 0.0)
            peak = memory_kb(child).get("VmHWM", 0)
            self.child_peak_rss_kb[child] = max(self.child_peak_rss_kb.get(child, 0), peak)
        if now is not None:
            self.cpu_window = now - self.cpu_mark + self.child_cpu
        self.peak_rss_kb = max(self.peak_rss_kb, memory_kb(self.pid).get("VmHWM", 0))
        if self.profiler is not None:
            self.profiler.stop()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def summary(self) -> dict[str, object]:
        """This process's figures; the dict is completed with the exit code once the process is stopped."""
        out: dict[str, object] = {"name": self.name, "pid": self.pid,
                                  "cpu_s": None if self.cpu_window is None else round(self.cpu_window, 3),
                                  "peak_rss_mb": round(self.peak_rss_kb / 1024, 1), "exit_code": self.exit_code,
                                  "log": str(self.log)}
        if self.child_peak_rss_kb:
            out["children_cpu_s"] = round(self.child_cpu, 3)
            out["children_peak_rss_mb"] = [round(kb / 1024, 1) for kb in self.child_peak_rss_kb.values()]
        if self.profiler is not None:
            out["profile"] = hot_spots(self.profiler.out)
        self.reported.append(out)
        return out


async def spawn(name: str, args: list[str], env: dict[str, str], log: Path) -> Proc:
    """Start `python ARGS...` from the repository with `env`, output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(sys.executable, *args, cwd=REPO, env=env, stdout=out,
                                                       stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    return Proc(name, process, log)


async def run(args: list[str], env: dict[str, str], log: Path, timeout: float = 120.0) -> None:
    """Run `python ARGS...` to completion; raise with the end of its output when it fails."""
    proc = await spawn(args[-1], args, env, log)
    try:
        code = await asyncio.wait_for(proc.process.wait(), timeout)
    except TimeoutError:
        await stop(proc, grace=2)
        raise RuntimeError(f"`{' '.join(args)}` did not finish within {timeout:.0f}s:\n{proc.tail()}") from None
    if code != 0:
        raise RuntimeError(f"`{' '.join(args)}` exited {code}:\n{proc.tail()}")


async def stop(proc: Proc, grace: float = 30.0) -> None:
    """SIGTERM (the worker finishes the message in hand and flushes its outbox), SIGKILL after `grace`."""
    if proc.alive():
        with contextlib.suppress(ProcessLookupError):
            proc.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.process.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.process.kill()
            await proc.process.wait()
    proc.exit_code = proc.process.returncode
    if proc.profiler is not None:
        proc.profiler.stop()
    for reported in proc.reported:
        reported["exit_code"] = proc.exit_code
