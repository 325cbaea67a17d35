"""`benchmarks.offset_commits` reads the group of an offset-commit record from `__consumer_offsets` keys."""

from __future__ import annotations

import struct

from benchmarks.offset_commits import commit_group


def key(version: int, group: str, topic: str = "t", partition: int = 0) -> bytes:
    g, t = group.encode(), topic.encode()
    return struct.pack(">hh", version, len(g)) + g + struct.pack(">h", len(t)) + t + struct.pack(">i", partition)


def test_an_offset_commit_key_of_either_version_gives_its_group() -> None:
    assert commit_group(key(0, "bench-ab12-latency.ticketflow.sync.conversation-events")) == \
        "bench-ab12-latency.ticketflow.sync.conversation-events"
    assert commit_group(key(1, "g")) == "g"


def test_group_metadata_and_unreadable_keys_are_not_offset_commits() -> None:
    assert commit_group(struct.pack(">hh", 2, 1) + b"g") is None
    assert commit_group(None) is None
    assert commit_group(b"\x00") is None
