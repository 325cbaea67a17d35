"""S1 and X5 on the three-node cluster while the leader of the partitions the sync worker writes to
is killed: every conversation of every closed ticket is closed exactly once, nothing is
dead-lettered, and the inbound path (C1, X4) keeps working on the surviving nodes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

from aiokafka.admin import AIOKafkaAdminClient

from contracts import commands as c
from contracts.topics import CONVERSATION_COMMANDS, DEADLETTER, INBOUND_MESSAGES


async def _leaders(bootstrap: str, topic: str) -> Counter[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return Counter(p["leader"] for p in described["partitions"])


async def test_s1_x5_ticket_close_cascade_completes_through_a_leader_kill_while_sync_sends(system, cluster):
    account = await system.account()
    pairs = []
    for _ in range(12):
        conv = await system.new_conversation(account)
        pairs.append((await system.new_ticket(account, conv), conv))
    await system.settle()
    leaders = await _leaders(system.settings.bootstrap_servers, system.settings.topic(CONVERSATION_COMMANDS))
    victim = leaders.most_common(1)[0][0]
    closes = [system.command(c.ChangeTicketStatus, account, ticket_id=t, status="closed") for t, _conv in pairs]
    sending = asyncio.gather(*closes)
    await asyncio.sleep(0.05)
    await cluster.kill_node(victim)  # while the sync worker turns ticket.closed into close_conversation
    try:
        await sending
        for _ticket, conv in pairs:
            await system.wait_event(conv, "conversation.closed")
        bad = system.inbound(account, thread="after-the-kill")
        await system.publish_raw(system.settings.topic(INBOUND_MESSAGES), bad.partition_key().encode(), b"{not json")
        await system.receive(system.inbound(account, thread="after-the-kill"))
        await system.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER) and r.key == bad.partition_key())
    finally:
        await cluster.start_node(victim)
    await system.settle()
    for ticket, conv in pairs:
        assert system.types(conv).count("conversation.closed") == 1
        assert (await system.conversation(conv)).status == "closed"
        assert (await system.ticket(ticket)).state == "CLOSED"
    dead = system.probe.matching(lambda r: r.topic.endswith(DEADLETTER))
    assert [json.loads(r.value or b"null") if r.value != b"{not json" else "poison" for r in dead] == ["poison"]
