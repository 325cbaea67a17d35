"""What a run records besides its figures (versions, settings, machine, commit) and how it prints them."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.procs import REPO, loadavg
from benchmarks.scenarios import Result
from workers.settings import Settings

PACKAGES = ("faststream", "aiokafka", "sqlalchemy", "asyncpg", "aiosqlite", "pydantic", "alembic")


def versions(postgres: str) -> dict[str, Any]:
    out: dict[str, Any] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    out["sqlite"] = sqlite3.sqlite_version
    out["kafka_broker"] = kafka_version()
    out["postgresql"] = postgres
    return out


def kafka_version() -> str:
    """The local launcher's broker version (deploy/kafka/lib/.fetched-X); `external` for another broker."""
    if os.environ.get("BENCH_KAFKA_EXTERNAL"):
        return "external (KAFKA_BOOTSTRAP_SERVERS)"
    marks = sorted((REPO / "deploy" / "kafka" / "lib").glob(".fetched-*"))
    return marks[-1].name.removeprefix(".fetched-") if marks else "unknown"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split(":", 1)[1].strip()
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "memory": mem, "kernel": platform.release(),
            "loadavg_at_start": loadavg()}


def git() -> dict[str, Any]:
    def out(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = out("status", "--porcelain", "--", "workers", "storage", "contracts", "ticketflow")
    return {"commit": out("rev-parse", "HEAD").strip(), "branch": out("rev-parse", "--abbrev-ref", "HEAD").strip(),
            "uncommitted_in_core": [line[3:] for line in changed.splitlines() if line.strip()]}


def settings(base: Settings) -> dict[str, Any]:
    shown = base.model_dump(mode="json", exclude={"database_url", "kafka_password"})
    shown["env"] = {k: v for k, v in os.environ.items()
                    if k.startswith("TICKETFLOW_") and "PASSWORD" not in k}
    return shown


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


COLUMNS = ("scenario", "procs", "msgs", "msg/s", "x raw", "p50 ms", "p99 ms", "p99.9 ms", "CPU ms/msg", "RSS MB",
           "busy %", "stolen %", "status / note")
"""`busy %`: how busy the whole machine (all cores, every process) was in the measured window; `stolen %`:
how much of its time the hypervisor gave to other tenants meanwhile (a shared machine runs slower then)."""


def table(results: list[Result]) -> str:
    rows = [COLUMNS]
    for r in results:
        rate_digits = 0 if (r.rate or 0) >= 100 else 1
        rows.append((r.scenario, _cell(r.procs or None), _cell(r.messages or None), _cell(r.rate, rate_digits),
                     _cell(r.ratio, 3), _cell(r.p50_ms), _cell(r.p99_ms), _cell(r.p999_ms),
                     _cell(r.cpu_ms_per_msg, 2), _cell(r.peak_rss_mb, 0), _cell(r.busy_percent, 0),
                     _cell(r.stolen_percent, 0), r.status if not r.note else f"{r.status}: {r.note}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, len(widths))] + [row[-1]]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 13)
    return "\n".join(lines)


def markdown(results: list[Result]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    lines = [head, "|" + "|".join(" --- " for _ in COLUMNS) + "|"]
    for r in results:
        rate_digits = 0 if (r.rate or 0) >= 100 else 1
        cells = [r.scenario, _cell(r.procs or None), _cell(r.messages or None), _cell(r.rate, rate_digits),
                 _cell(r.ratio, 3), _cell(r.p50_ms), _cell(r.p99_ms), _cell(r.p999_ms), _cell(r.cpu_ms_per_msg, 2),
                 _cell(r.peak_rss_mb, 0), _cell(r.busy_percent, 0), _cell(r.stolen_percent, 0),
                 r.status if not r.note else f"{r.status}: {r.note}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
