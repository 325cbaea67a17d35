"""`scripts/bench.sh` (= `python -m benchmarks`): every throughput and latency figure of Ticketflow
in one bounded run, on one broker, printed as a table and written as JSON.

    scripts/bench.sh                                   # default scenarios, 10,000 messages each
    scripts/bench.sh --messages 2000 --seconds 10      # a short run
    scripts/bench.sh --scenarios raw,inbound-pg,latency --json var/bench/mine.json
    scripts/bench.sh --scenarios inbound-pg,stored-1m --keep-db bench_stored   # prepare once, reuse

Needs KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL (a PostgreSQL server where the role may CREATE
DATABASE: each scenario gets a database of its own, dropped afterwards); scripts/bench.sh starts the
project's own Kafka and PostgreSQL when they are not set. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.db import server_version
from benchmarks.procs import REPO, loadavg, machine_busy, shares
from benchmarks.scenarios import (
    Options,
    Result,
    Run,
    batch_cost,
    inbound_drain,
    latency,
    passthrough,
    stored_1m,
    ticket_drain,
)
from workers.settings import Settings, masked_url

SCENARIOS = ("raw", "faststream", "faststream-batch", "inbound-pg", "inbound-sqlite", "inbound-pg-2proc", "ticket-pg",
             "latency", "batch-cost", "stored-1m")
DEFAULT = tuple(s for s in SCENARIOS if s != "stored-1m")
NEEDS_POSTGRES = {"inbound-pg", "inbound-pg-2proc", "ticket-pg", "latency", "batch-cost", "stored-1m"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/bench.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=10_000, help="backlog of each drain scenario (default 10000)")
    p.add_argument("--pass-messages", type=int,
                   help="backlog of the passthrough scenarios (default: max(--messages, 20000): they drain in about a "
                        "second, a smaller backlog would measure the poll interval)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each open-loop rate step (default 20)")
    p.add_argument("--cap", type=float, default=300.0,
                   help="time cap of each drain, from its workers' start (default 300 s); a capped drain reports what it "
                        "committed so far")
    p.add_argument("--scenarios", default=",".join(DEFAULT),
                   help=f"comma-separated, in any order; 'all' adds stored-1m (default: {','.join(DEFAULT)}); "
                        f"known: {', '.join(SCENARIOS)}")
    p.add_argument("--json", help="write the results here (default var/bench/bench-<time>-<run>.json)")
    p.add_argument("--accounts", type=int, default=50, help="accounts the inbound messages are spread over (default 50)")
    p.add_argument("--stored-rows", type=int, default=1_000_000, help="messages stored before stored-1m (default 1000000)")
    p.add_argument("--keep-db", metavar="NAME",
                   help="stored-1m: prepare the stored rows in PostgreSQL database NAME and keep it; a later run with the "
                        "same NAME (and --stored-rows) reuses it instead of copying again")
    p.add_argument("--max-rate", type=float,
                   help="latency: the inbound rate the 25/50/75%% steps are taken of (default: inbound-pg's, this run)")
    p.add_argument("--profile", action="store_true",
                   help="sample every worker and passthrough process with py-spy during its measured window (adds some "
                        "load); the JSON then names each process's hottest functions")
    return p


def selected(text: str) -> list[str]:
    wanted = [s.strip() for s in text.split(",") if s.strip()]
    if wanted == ["all"]:
        return list(SCENARIOS)
    unknown = [s for s in wanted if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"bench: unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    return [s for s in SCENARIOS if s in wanted]


def budget(name: str, o: Options) -> float:
    """A safety net around a whole scenario (its drains stop themselves at --cap)."""
    if name in ("ticket-pg", "inbound-pg-2proc"):
        return 3 * o.cap + 180
    if name == "latency":
        return 3 * o.cap + 3 * (o.seconds + max(15.0, o.seconds)) + 180
    if name == "stored-1m":
        return o.cap + 180 + 3600
    return o.cap + 180


async def one(run: Run, name: str) -> list[Result]:
    if name in ("raw", "faststream", "faststream-batch"):
        return [await passthrough(run, name)]
    if name == "inbound-pg":
        return [await inbound_drain(run, name, "postgresql")]
    if name == "inbound-sqlite":
        return [await inbound_drain(run, name, "sqlite")]
    if name == "inbound-pg-2proc":  # 1 vs 2 processes, both measured with the processes up first
        return [await inbound_drain(run, "inbound-pg-1proc", "postgresql", processes=1, warm=True),
                await inbound_drain(run, "inbound-pg-2proc", "postgresql", processes=2, warm=True)]
    if name == "ticket-pg":
        return [await ticket_drain(run)]
    if name == "latency":
        return await latency(run)
    if name == "batch-cost":
        return await batch_cost(run)
    if name == "stored-1m":
        return [await stored_1m(run)]
    raise ValueError(name)


async def guarded(run: Run, name: str, body: Callable[[], Awaitable[list[Result]]]) -> list[Result]:
    before = machine_busy()
    started = time.monotonic()
    try:
        results = await asyncio.wait_for(body(), budget(name, run.o))
    except TimeoutError:
        results = [Result(name, "drain", "capped", note=f"scenario exceeded its {budget(name, run.o):.0f}s budget")]
    except Exception as exc:
        first = (str(exc).splitlines() or [exc.__class__.__name__])[0]
        results = [Result(name, "drain", "failed", note=f"{exc.__class__.__name__}: {first[:300]}",
                          details={"traceback": traceback.format_exc()[-4000:]})]
    busy, stolen = shares(before, machine_busy())
    for r in results:
        r.details["scenario_seconds"] = round(time.monotonic() - started, 1)
        r.details["machine_busy_percent"] = busy
        r.details["machine_stolen_percent"] = stolen
        r.details["loadavg_after"] = loadavg()
    return results


async def main_async(args: argparse.Namespace) -> int:
    names = selected(args.scenarios)
    if args.keep_db and not (args.keep_db.startswith("bench") and args.keep_db.replace("_", "").isalnum()):
        print(f"bench: --keep-db {args.keep_db!r}: the name must start with 'bench' and hold only letters, digits "
              "and '_' (a database of that name that is not prepared gets dropped and recreated)", file=sys.stderr)
        return 2
    base = Settings.from_env()
    admin_url = os.environ.get("DATABASE_URL", "")
    if NEEDS_POSTGRES & set(names) and not admin_url.startswith("postgresql"):
        print("bench: DATABASE_URL must be postgresql+asyncpg://... (a server where the role may CREATE DATABASE) "
              f"for {', '.join(sorted(NEEDS_POSTGRES & set(names)))}; scripts/bench.sh starts the local one",
              file=sys.stderr)
        return 2
    run_id = uuid.uuid4().hex[:6]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = REPO / "var" / "bench" / f"{stamp}-{run_id}"
    json_path = Path(args.json) if args.json else REPO / "var" / "bench" / f"bench-{stamp}-{run_id}.json"
    options = Options(messages=args.messages, pass_messages=args.pass_messages or max(args.messages, 20_000),
                      seconds=args.seconds, cap=args.cap, accounts=args.accounts, stored_rows=args.stored_rows,
                      keep_db=args.keep_db, max_rate=args.max_rate, out_dir=out_dir, profile=args.profile)
    t0 = time.monotonic()

    def say(line: str) -> None:
        print(f"bench {time.monotonic() - t0:7.1f}s {line}", file=sys.stderr, flush=True)

    run = Run(run_id, options, base, admin_url, say)
    command = os.environ.get("BENCH_COMMAND") or "python -m benchmarks " + shlex.join(sys.argv[1:])
    doc: dict[str, Any] = {
        "run_id": run_id, "date": datetime.now(UTC).isoformat(timespec="seconds"), "command": command,
        "scenarios": names, "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(options).items()},
        "versions": report.versions(await server_version(admin_url) if admin_url.startswith("postgresql") else "-"),
        "settings": report.settings(base), "machine": report.machine(), "git": report.git(),
        "kafka": base.bootstrap_servers, "database_server": masked_url(admin_url) if admin_url else None, "logs": str(out_dir),
    }
    say(f"run {run_id}: {', '.join(names)}; {options.messages} messages per drain, passthrough {options.pass_messages}, "
        f"cap {options.cap:.0f}s; logs in {out_dir}")
    # Ctrl-C or SIGTERM: cancel the run, so the current scenario stops its processes and removes its topics and database
    main_task = asyncio.current_task()
    assert main_task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, main_task.cancel)
    await run.broker.start()
    try:
        for name in names:
            say(f"[{name}] start")
            results = await guarded(run, name, lambda name=name: one(run, name))  # type: ignore[misc]
            run.results += results
            for r in results:
                say(f"[{r.scenario}] {r.status}: {r.rate if r.rate is not None else '-'} msg/s {r.note}")
            _write(json_path, doc, run.results)
    finally:
        await run.broker.close()
    raw = run.result("raw")
    for r in run.results:
        if r.kind == "drain" and raw is not None and raw.rate and r.rate is not None:
            r.ratio = round(r.rate / raw.rate, 4)
    doc["machine"]["loadavg_at_end"] = loadavg()
    doc["total_seconds"] = round(time.monotonic() - t0, 1)
    _write(json_path, doc, run.results)
    print(f"\n{command}\n{doc['date']}, commit {doc['git']['commit'][:10]}, {doc['machine']['nproc']} cpus "
          f"({doc['machine']['cpu_model']}), kafka {doc['versions']['kafka_broker']}, postgresql "
          f"{doc['versions']['postgresql']}, load {doc['machine']['loadavg_at_start'][0]:.1f} -> "
          f"{doc['machine']['loadavg_at_end'][0]:.1f}\n")
    print(report.table(run.results))
    print(f"\nJSON: {json_path}")
    return 0 if all(r.status in ("ok", "skipped") for r in run.results) else 1


def _write(path: Path, doc: dict[str, Any], results: list[Result]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**doc, "results": [r.to_dict() for r in results]}, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # the run's long-lived offsets client still has the topics of finished scenarios (deleted) in its metadata
    logging.getLogger("aiokafka.cluster").setLevel(logging.CRITICAL)
    args = parser().parse_args(argv)
    try:
        return asyncio.run(main_async(args))
    except asyncio.CancelledError:
        print("bench: interrupted; the scenario in progress was cleaned up", file=sys.stderr)
        return 130
