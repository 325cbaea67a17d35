"""X4/X5 against hostile input, end to end on the real broker: every record is processed or
dead-lettered with a reason, none is skipped before Ticketflow's code runs, none wedges the records
behind it, and command ids are the sender's own per account."""

from __future__ import annotations

import json

import pytest

from contracts import commands as c
from contracts.topics import (
    CONVERSATION_COMMANDS,
    DEADLETTER,
    INBOUND_MESSAGES,
    TICKET_COMMANDS,
)
from tests.support.system import new_id

JSON = [("content-type", b"application/json")]


def _inbound_body(account: str, **overrides: object) -> dict:
    body = {"type": "inbound.message", "account_id": account, "channel": "email",
            "channel_message_id": new_id("m-"), "channel_thread_key": new_id("t-"), "sender_email": "a@b.example",
            "text": "hi", "sent_at": "2026-01-01T00:00:00+00:00"}
    body.update(overrides)
    return body


def _hostile(account: str, label: str) -> tuple[bytes, list[tuple[str, bytes]], str]:
    """(value, headers, expected dead-letter reason) for one kind of hostile record."""
    good = json.dumps(_inbound_body(account)).encode()
    cases = {
        "broken-json-labelled-json": (b'{"broken": \n', JSON, "not_json"),
        "not-utf8-ce-id": (good, [("ce_id", b"\xff\xfe"), *JSON], "not_utf8_header"),
        "json-nested-100000-deep": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, JSON, "too_deep"),
        "array-nested-100000-deep": (b"[" * 100_000 + b"]" * 100_000, JSON, "too_deep"),
        "448kb-correlation-id": (good, [("ce_id", b"e-1"), ("ce_type", b"inbound.message"),
                                        ("ce_correlationid", b"c" * 448_000), *JSON], "invalid_header"),
        "nul-in-text": (json.dumps(_inbound_body(account, text="before\x00after")).encode(), JSON, "invalid_schema"),
        "just-under-1mb": (json.dumps(_inbound_body(account, text="x" * 1_040_000)).encode(), JSON, "too_large"),
        "900kb-invalid": (json.dumps(_inbound_body(account, text="x" * 900_000)).encode(), JSON, "invalid_schema"),
    }
    return cases[label]


@pytest.mark.parametrize("label", [
    "broken-json-labelled-json", "not-utf8-ce-id", "json-nested-100000-deep", "array-nested-100000-deep",
    "448kb-correlation-id", "nul-in-text", "just-under-1mb", "900kb-invalid",
])
async def test_x4_hostile_inbound_record_is_dead_lettered_whole_and_the_next_one_is_processed(system, label):
    account = await system.account()
    key = f"{account}:email:{label}".encode()  # one key: the good record sits behind the bad one on its partition
    value, headers, reason = _hostile(account, label)
    await system.publish_raw(system.settings.topic(INBOUND_MESSAGES), key, value, headers=headers)
    good = system.inbound(account, thread=label)
    await system.publish_raw(system.settings.topic(INBOUND_MESSAGES), key, good.model_dump_json().encode(), JSON)
    await system.probe.wait_for(lambda r: r.type == "conversation.message_received"
                                and r.body["channel_message_id"] == good.channel_message_id, what="the good message")
    dead = (await system.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER) and r.key == key.decode(),
                                        what=f"the dead letter of {label}"))[0]
    assert dead.headers["dlq_reason"] == reason, dead.headers["dlq_detail"]
    assert dead.value == value, "the dead letter carries the original bytes"
    assert dead.headers["dlq_original_topic"] == system.settings.topic(INBOUND_MESSAGES)
    assert "dlq_truncated" not in dead.headers
    await system.settle()
    assert len(await system.conversations_of(account)) == 1


@pytest.mark.parametrize("topic", [CONVERSATION_COMMANDS, TICKET_COMMANDS])
async def test_x4_command_with_a_non_utf8_header_or_broken_json_is_dead_lettered(system, topic):
    account = await system.account()
    for label, value, headers, reason in [
        ("header", json.dumps({"type": "close_conversation", "command_id": new_id(), "account_id": account,
                               "conversation_id": "c"}).encode(), [("ce_id", b"\xff"), *JSON], "not_utf8_header"),
        ("json", b"{", JSON, "not_json"),
    ]:
        key = new_id(f"{label}-").encode()
        await system.publish_raw(system.settings.topic(topic), key, value, headers=headers)
        wanted = key.decode()
        dead = (await system.probe.wait_for(lambda r, k=wanted: r.topic.endswith(DEADLETTER) and r.key == k,
                                            what=f"dead letter ({label})"))[0]
        assert dead.headers["dlq_reason"] == reason and dead.value == value


async def test_x1_x5_two_accounts_may_send_the_same_command_id(system):
    """Account B's `cmd-42` (rejected: not found) does not swallow account A's own `cmd-42`."""
    a, b = await system.account(), await system.account()
    conv = await system.new_conversation(a)
    shared_id = new_id("cmd-42-")
    foreign = c.CreateTicket(command_id=shared_id, account_id=b, conversation_id=new_id("conv-"))
    await system.publish(foreign)
    assert (await system.rejection(shared_id))["reason"] == "not_found"
    own = c.CreateTicket(command_id=shared_id, account_id=a, conversation_id=conv)
    await system.publish(own)
    created = await system.probe.wait_for(lambda r: r.type == "ticket.created" and conv in r.body["conversation_ids"],
                                          what="account A's ticket")
    assert created[0].body["account_id"] == a
    await system.settle()
    assert len(await system.tickets_of(a)) == 1
    assert [r.body["account_id"] for r in system.rejections(shared_id)] == [b]


async def test_x1_s5_a_forged_sync_command_on_the_public_topic_is_refused_and_changes_nothing(system):
    """Only the sync worker may delete a conversation's ticket (on the internal topic): the same command on
    the public ticket-commands topic, even claiming `system:sync`, is dead-lettered `internal_command`."""
    account = await system.account()
    conv = await system.new_conversation(account)
    ticket = await system.new_ticket(account, conv)
    forged = c.DeleteTicketOfConversation(command_id=new_id("forged-"), account_id=account, conversation_id=conv,
                                          actor_id=c.SYNC_ACTOR)
    await system.publish(forged)  # to the catalogue topic of the type: the public ticket commands
    dead = await system.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER) and r.key == conv
                                       and r.headers.get("ce_id") == forged.command_id, what="the forged command")
    assert dead[0].headers["dlq_reason"] == "internal_command"
    await system.settle()
    assert not (await system.ticket(ticket)).deleted
    assert "ticket.deleted" not in system.types(ticket)
