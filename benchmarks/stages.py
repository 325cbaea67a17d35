"""Where a record's time goes inside the workers, from their own `/metrics`: how long records waited
before their batch was taken up (`ticketflow_record_wait_seconds`), how long batches took from poll to
offsets committed (`ticketflow_batch_duration_seconds`), and how long outbox rows waited for the
broker's ack (`ticketflow_relay_delay_seconds`). Two scrapes around a load step give that step's figures:
mean, and p50/p99 interpolated within the histogram's buckets as Prometheus' `histogram_quantile` does
(so they are as coarse as the buckets: 1, 2.5, 5, 10, 25, 50, 100 ms, ...)."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

FAMILIES = {"ticketflow_record_wait_seconds": "wait", "ticketflow_batch_duration_seconds": "batch",
            "ticketflow_relay_delay_seconds": "relay"}


@dataclass
class Series:
    buckets: dict[float, float] = field(default_factory=dict)
    """le -> cumulative count"""
    sum: float = 0.0
    count: float = 0.0


Snapshot = dict[tuple[str, str], Series]
"""(stage, "worker.input" or "worker") -> its histogram."""


def parse(text: str) -> Snapshot:
    snapshot: Snapshot = {}
    for family in text_string_to_metric_families(text):
        stage = FAMILIES.get(family.name)
        if stage is None:
            continue
        for sample in family.samples:
            labels = dict(sample.labels)
            le = labels.pop("le", None)
            where = ".".join(labels[k] for k in ("worker", "input") if k in labels)
            series = snapshot.setdefault((stage, where), Series())
            if sample.name.endswith("_bucket") and le is not None:
                series.buckets[float(le)] = sample.value
            elif sample.name.endswith("_sum"):
                series.sum = sample.value
            elif sample.name.endswith("_count"):
                series.count = sample.value
    return snapshot


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """`histogram_quantile`: the q-quantile of cumulative (le, count) buckets, linear within a bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * ((rank - below) / (count - below) if count > below else 0.0)
        lower, below = le, count
    return lower


def between(before: Snapshot, after: Snapshot) -> dict[str, dict[str, float | None]]:
    """Per stage and place, what happened between two snapshots: count, mean, p50 and p99 (ms)."""
    out: dict[str, dict[str, float | None]] = {}
    for key, now in sorted(after.items()):
        then = before.get(key, Series())
        count = now.count - then.count
        if count <= 0:
            continue
        buckets = sorted((le, c - then.buckets.get(le, 0.0)) for le, c in now.buckets.items())
        p50, p99 = quantile(0.5, buckets), quantile(0.99, buckets)
        out[f"{key[0]} {key[1]}"] = {
            "count": count, "mean_ms": round((now.sum - then.sum) / count * 1000, 1),
            "p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "p99_ms": None if p99 is None else round(p99 * 1000, 1)}
    return out


async def scrape(port: int, timeout: float = 10.0) -> Snapshot:
    """The stage histograms a worker serves on 127.0.0.1:`port`/metrics."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200") and not head.startswith(b"HTTP/1.0 200"):
        raise RuntimeError(f"/metrics on port {port} answered {head[:40]!r}")
    return parse(body.decode())


async def scrape_all(ports: dict[str, int]) -> Snapshot:
    snapshot: Snapshot = {}
    for port in ports.values():
        snapshot.update(await scrape(port))
    return snapshot


def summary(stages: dict[str, Any]) -> str:
    """One line: `stage place mean/p99` for each, in ms."""
    return "; ".join(f"{name} {v['mean_ms']:.0f}/{v['p99_ms'] if v['p99_ms'] is not None else '-'}"
                     for name, v in stages.items())
