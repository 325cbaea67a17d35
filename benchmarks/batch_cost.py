"""The CPU of the inbound batch path itself, in one process, without Kafka: the inbound worker's own
batch runner (`workers.delivery.batch`) runs batches of 1, 10 and 100 fresh inbound messages against
DATABASE_URL, and the process's user + system CPU per batch and per message is measured. A light load
is made of one- or two-record batches, so the fixed cost per batch (statements, round trips) is what
sets its CPU and, on a busy machine, its latency; a drain amortises it over up to 500 records.

    python -m benchmarks.batch_cost --out result.json [--batches 300] [--sizes 1,10,100]   # DATABASE_URL: migrated

The relay is not running (its outbox rows stay unsent) and no offsets are committed: what is left is
parse, prefetch, rules, flush and commit, as in a worker."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks import data
from storage.database import create_engine
from ticketflow.running import build_worker, quiet_collector
from workers.accounts import apply_account_record
from workers.settings import Settings

SIZES = (1, 10, 100)
"""Batch sizes measured by default (`--sizes 500` adds a drain's batch)."""
WARM_UP = 30


def _records(run: str, accounts: list[str], count: int, tag: str) -> list[Any]:
    inputs = data.inbound_set(run, accounts, count, seed=11, tag=tag)
    now = int(time.time() * 1000)
    return [SimpleNamespace(key=r.key, value=r.value, headers=r.headers, topic="batch-cost", partition=0, offset=i,
                            timestamp=now, timestamp_type=0) for i, r in enumerate(inputs.records)]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(url: str, batches: int, sizes: tuple[int, ...] = SIZES) -> dict[str, Any]:
    worker = build_worker("inbound", Settings(topic_prefix="batch-cost.", database_url=url))
    worker._engine = create_engine(url)  # what `Worker.open` sets, without the producer and the relay
    try:
        runner = worker.batches["messages"]
        accounts = data.account_ids("batch-cost", 5)
        for record in data.account_records(accounts):
            await apply_account_record(worker.engine, worker.name, record)
        run = f"bc{os.getpid()}{int(time.time())}"
        for record in _records(run, accounts, WARM_UP, "w"):
            await runner.run([record])
        quiet_collector()  # as a worker does once it runs
        out: dict[str, Any] = {}
        for size in sizes:
            count = max(3, batches // size)
            records = _records(run, accounts, count * size, f"s{size}")
            cpu, wall = _cpu(), time.perf_counter()
            for start in range(0, len(records), size):
                await runner.run(records[start:start + size])
            cpu, wall = _cpu() - cpu, time.perf_counter() - wall
            out[str(size)] = {"batches": count, "cpu_ms_per_batch": round(cpu / count * 1000, 3),
                              "cpu_ms_per_message": round(cpu / (count * size) * 1000, 3),
                              "wall_ms_per_batch": round(wall / count * 1000, 3)}
        return out
    finally:
        await worker.engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.batch_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    p.add_argument("--batches", type=int, default=300, help="one-record batches measured (fewer of the larger sizes)")
    p.add_argument("--sizes", default=",".join(map(str, SIZES)),
                   help="batch sizes to measure, comma-separated (default %(default)s)")
    args = p.parse_args()
    sizes = tuple(int(s) for s in args.sizes.split(",") if s.strip())
    result = asyncio.run(measure(os.environ["DATABASE_URL"], args.batches, sizes))
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
