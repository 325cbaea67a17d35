"""A rolling upgrade, end to end: a newer inbound worker adds a field to an event, or a new event
type, and the sync and ticketing workers of the older version keep working (X3, X4, S3)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from contracts import commands as c
from contracts.envelope import Envelope
from contracts.topics import CONVERSATION_EVENTS, DEADLETTER
from tests.support.system import new_id


async def test_x3_s3_an_event_with_a_field_added_by_a_newer_producer_is_still_acted_on(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket = await system.new_ticket(account, conv)
    await system.settle()
    version = max(r.body["version"] for r in system.events(conv)) + 1
    body = {"type": "conversation.owner_changed", "conversation_id": conv, "account_id": account,
            "version": version, "occurred_at": datetime.now(UTC).isoformat(), "owner_id": "agent-new", "previous_owner_id": None,
            "owner_team": "tier-2"}  # the field a newer inbound worker added
    env = Envelope(id=new_id("evt-"), type=body["type"], source="/ticketflow/inbound", time=datetime.now(UTC),
                   subject=conv, account_id=account)
    await system.publish_raw(system.settings.topic(CONVERSATION_EVENTS), conv.encode(), json.dumps(body).encode(),
                             env.to_headers())
    changed = await system.wait_event(ticket, "ticket.owner_changed")
    assert changed[0].body["owner_id"] == "agent-new"
    await system.settle()
    assert system.probe.matching(lambda r: r.topic.endswith(DEADLETTER) and r.key == conv) == []


async def test_x3_an_event_type_this_version_does_not_know_is_passed_over_not_dead_lettered(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    body = {"type": "conversation.tagged", "conversation_id": conv, "account_id": account, "version": 99,
            "occurred_at": datetime.now(UTC).isoformat(), "tag": "vip"}
    await system.publish_raw(system.settings.topic(CONVERSATION_EVENTS), conv.encode(), json.dumps(body).encode())
    await system.command(c.CloseConversation, account, conversation_id=conv)  # behind it on the same partition
    await system.wait_event(conv, "conversation.closed")
    await system.settle()  # both readers of the topic passed it: lag 0
    assert system.probe.matching(lambda r: r.topic.endswith(DEADLETTER) and r.key == conv) == []
