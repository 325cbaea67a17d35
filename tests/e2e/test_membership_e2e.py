"""X5 end to end, consumer-group membership (ADR 13): a replica that crashes and comes back under its
`TICKETFLOW_INSTANCE_ID` takes its partitions back at once, and a replica stopped cleanly hands them over
at once, both long before the group would have noticed from its session timeout.

The workers here run with a session timeout of 120 s and every wait is shorter than that: a restarted
dynamic member would wait for the dead one's session to expire, and a static member that did not leave
would keep its partitions until then."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from contracts.topics import INBOUND_MESSAGES
from tests.support.processes import isolated, stop, wait_exit, worker_process
from workers.settings import Settings

LONG_SESSION_MS = 120_000
WITHIN = 60.0
"""Every wait: half the session timeout, so passing cannot come from the session expiring."""


def static(name: str) -> dict[str, str]:
    return {"TICKETFLOW_INSTANCE_ID": name, "TICKETFLOW_SESSION_TIMEOUT_MS": str(LONG_SESSION_MS)}


async def members(settings: Settings, group: str) -> tuple[str, dict[str, set[int]]]:
    """The group's state and each member's partitions of the inbound topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    try:
        described: Any = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    state, held = "Unknown", {}
    for found in described[0].groups:
        state = found[2]
        for member in found[5]:
            parts = ConsumerProtocolMemberAssignment.decode(member[-1]).partitions() if member[-1] else []
            held[member[0]] = {tp.partition for tp in parts if tp.topic == settings.topic(INBOUND_MESSAGES)}
    return state, held


async def until_members(settings: Settings, group: str, count: int) -> dict[str, set[int]]:
    """Wait (at most WITHIN) until the group is Stable with `count` members; returns their partitions."""
    deadline = time.monotonic() + WITHIN
    while True:
        state, held = await members(settings, group)
        if state == "Stable" and len(held) == count:
            return held
        assert time.monotonic() < deadline, f"group {group} is {state} with {len(held)} members, not {count}"
        await asyncio.sleep(0.5)


async def test_x5_a_crashed_replica_back_under_its_instance_id_takes_its_partitions_back_before_its_session_expires(system):
    settings, iso = await isolated(system)
    group = settings.group("inbound", "messages")
    try:
        account = await iso.account()
        first = worker_process(settings, "inbound", **static("inbound-a"))
        try:
            await iso.receive(iso.inbound(account))
            held = await until_members(settings, group, 1)
        finally:
            first.kill()
        await wait_exit(first)
        restarted = worker_process(settings, "inbound", **static("inbound-a"))
        try:
            # the dead member's session has 120 s to run: only a static rejoin can be served within 60 s
            conversation = await iso.receive(iso.inbound(account))
            assert len(await iso.messages_of(conversation)) == 1
            after = await until_members(settings, group, 1)
        finally:
            await stop(restarted)
        assert list(after.values()) == list(held.values()) == [set(range(6))]
        assert list(after) != list(held), "a new member id under the same instance id, not the old member"
    finally:
        await iso.probe.stop()


async def test_x5_a_static_replica_stopped_cleanly_leaves_its_group_at_once(system):
    settings, iso = await isolated(system)
    group = settings.group("inbound", "messages")
    a = worker_process(settings, "inbound", **static("inbound-a"))
    b = worker_process(settings, "inbound", **static("inbound-b"))
    try:
        account = await iso.account()
        both = await until_members(settings, group, 2)
        assert sorted(len(p) for p in both.values()) == [3, 3]
        await stop(b)  # SIGTERM: finishes what it holds and leaves
        alone = await until_members(settings, group, 1)
        assert list(alone.values()) == [set(range(6))], "the replica left standing holds every partition"
        threads = [iso.inbound(account) for _ in range(12)]
        await asyncio.gather(*(iso.receive(msg) for msg in threads))
    finally:
        await stop(a)
        await stop(b)
        await iso.probe.stop()
