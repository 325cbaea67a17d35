"""How many offset commits consumer groups left in the broker's `__consumer_offsets`, per group.

    .venv/bin/python -m benchmarks.offset_commits bench-b18d35- bench-bdd9d2-

Reads the whole topic (every partition, from its start to its end at the time of the call), decodes
each record's key (version 0 or 1: an offset commit, with its group, topic and partition) and counts
the records of groups whose names start with one of the prefixes given (a benchmark run's own:
`bench-<run>-`). One commit writes one record per partition its consumer commits, so the counts are
what the group coordinator had to take and replicate. Records compaction already removed are not
counted: read soon after the runs to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
from collections import Counter

from aiokafka import TopicPartition

from workers.kafka import KafkaAccess

OFFSETS_TOPIC = "__consumer_offsets"


def commit_group(key: bytes | None) -> str | None:
    """The group of an offset-commit record's key (versions 0 and 1); None for any other record."""
    if key is None or len(key) < 4:
        return None
    version, length = struct.unpack(">hh", key[:4])
    if version not in (0, 1):
        return None  # 2: group metadata
    return key[4:4 + length].decode(errors="replace")


async def count(kafka: KafkaAccess, prefixes: list[str]) -> Counter[str]:
    admin = kafka.admin("bench-offset-commits")
    await admin.start()
    try:
        described = await admin.describe_topics([OFFSETS_TOPIC])
    finally:
        await admin.close()
    parts = [TopicPartition(OFFSETS_TOPIC, p["partition"]) for p in described[0]["partitions"]]
    consumer = kafka.consumer(client_id="bench-offset-commits", enable_auto_commit=False)
    await consumer.start()
    counts: Counter[str] = Counter()
    try:
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        left = {tp for tp in parts if ends[tp] > 0}
        while left:
            for records in (await consumer.getmany(*left, timeout_ms=1000, max_records=5000)).values():
                for record in records:
                    group = commit_group(record.key)
                    if group is not None and record.value is not None and group.startswith(tuple(prefixes)):
                        counts[group] += 1
            left = {tp for tp in left if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="+", help="group name prefixes (a benchmark run's: bench-<run>-)")
    args = parser.parse_args()
    kafka = KafkaAccess(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    counts = asyncio.run(count(kafka, args.prefixes))
    for prefix in args.prefixes:
        mine = {g: n for g, n in counts.items() if g.startswith(prefix)}
        for group, n in sorted(mine.items()):
            print(f"{group}\t{n}")
        print(f"{prefix}*\t{sum(mine.values())}")


if __name__ == "__main__":
    main()
