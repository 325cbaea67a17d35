"""X4 and X5 end to end: bad input is dead-lettered and never blocks; redelivery, crashes between
the database commit and the offset commit, and database outages change nothing."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from contracts import commands as c
from contracts.topics import (
    CONVERSATION_COMMANDS,
    DEADLETTER,
    INBOUND_MESSAGES,
    TICKET_COMMANDS,
)
from storage.database import create_engine
from tests.support.processes import caught_up, children, isolated, running, stop, wait_exit, worker_process
from tests.support.proxy import OutageProxy
from tests.support.services import fresh_database
from tests.support.system import System, new_id
from ticketflow.running import build_worker
from workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("label", "value", "reason"),
    [
        ("not-json", b"\x00\xffnot json at all", "not_json"),
        ("wrong-schema", json.dumps({"type": "inbound.message", "channel": "email", "text": "hi"}).encode(), "invalid_schema"),
        ("unknown-type", json.dumps({"type": "inbound.fax", "account_id": "x"}).encode(), "unknown_type"),
        ("missing-account", json.dumps({"type": "inbound.message", "channel": "email", "channel_message_id": "m",
                                        "channel_thread_key": "t", "sender_email": "a@b.c", "text": "hi",
                                        "sent_at": "2026-01-01T00:00:00+00:00"}).encode(), "invalid_schema"),
    ],
)
async def test_x4_malformed_inbound_message_is_dead_lettered_with_its_bytes_and_the_next_one_is_processed(
        system, label, value, reason):
    account = await system.account()
    key = f"{account}:email:{label}".encode()  # the same key: the same partition as the good message after it
    await system.publish_raw(system.settings.topic(INBOUND_MESSAGES), key, value, headers=[("origin", b"gateway-7")])
    good = system.inbound(account, thread=label)
    await system.publish_raw(system.settings.topic(INBOUND_MESSAGES), key, good.model_dump_json().encode())
    await system.probe.wait_for(lambda r: r.type == "conversation.message_received"
                                and r.body["channel_message_id"] == good.channel_message_id, what="the good message")
    dead = (await system.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER) and r.key == key.decode(),
                                        what="the dead letter"))[0]
    assert dead.value == value
    assert dead.headers["dlq_reason"] == reason
    assert dead.headers["dlq_original_topic"] == system.settings.topic(INBOUND_MESSAGES)
    assert dead.headers["dlq_consumer"] == "inbound.messages"
    assert dead.headers["origin"] == "gateway-7"
    assert int(dead.headers["dlq_original_offset"]) >= 0 and dead.headers["dlq_detail"]


async def test_x4_inbound_message_for_an_unknown_account_is_dead_lettered_not_guessed(system):
    msg = system.inbound(new_id("never-published-"))
    await system.publish(msg)
    dead = await system.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER) and r.body.get("channel_message_id")
                                       == msg.channel_message_id, what="dead letter for the unknown account")
    assert dead[0].headers["dlq_reason"] == "unknown_account"
    await system.settle()
    assert await system.conversations_of(msg.account_id) == []


@pytest.mark.parametrize("topic", [CONVERSATION_COMMANDS, TICKET_COMMANDS])
async def test_x4_command_of_unknown_type_is_dead_lettered(system, topic):
    account = await system.account()
    body = json.dumps({"type": "explode", "command_id": new_id(), "account_id": account}).encode()
    key = new_id("key-").encode()
    await system.publish_raw(system.settings.topic(topic), key, body)
    dead = (await system.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER) and r.key == key.decode()))[0]
    assert dead.headers["dlq_reason"] == "unknown_type" and dead.value == body


async def test_x5_the_same_command_twice_has_one_effect(system):
    account = await system.account()
    conv = await system.new_conversation(account)
    reply = c.ReplyToConversation(command_id=new_id("cmd-"), account_id=account, conversation_id=conv, text="On it!")
    await system.publish(reply, reply)
    await system.wait_event(conv, "conversation.message_sent")
    await system.settle()
    again = c.ReplyToConversation.model_validate(reply.model_dump())
    await system.publish(again)  # a later poll: found in the table, not in the transaction
    await system.settle()
    assert system.types(conv).count("conversation.message_sent") == 1
    outgoing = [m for m in await system.messages_of(conv) if m.direction == "outgoing"]
    assert len(outgoing) == 1
    assert system.rejections(reply.command_id) == []
    assert system.probe.matching(lambda r: r.topic.endswith(DEADLETTER) and r.key == conv) == [], \
        "a replayed command is a no-op, not a dead letter"


async def test_x5_inbound_worker_killed_between_db_commit_and_offset_commit_changes_nothing(system):
    settings, iso = await isolated(system)
    try:
        account = await iso.account()
        crashing = worker_process(settings, "inbound", fault="after_commit_before_ack:inbound.messages")
        msg = iso.inbound(account)
        await iso.publish(msg)
        assert await wait_exit(crashing) == 17, crashing.stderr.read().decode()[-2000:]
        convs = await iso.conversations_of(account)
        assert len(convs) == 1, "the transaction committed before the crash"
        restarted = worker_process(settings, "inbound")
        try:
            received = await iso.probe.wait_for(
                lambda r: r.type == "conversation.message_received" and r.key == convs[0].id, what="relayed event")
            created = await iso.wait_event(convs[0].id, "conversation.created")
            await caught_up(iso, "inbound", "messages", INBOUND_MESSAGES)
        finally:
            await stop(restarted)
        assert len(await iso.conversations_of(account)) == 1
        assert len(await iso.messages_of(convs[0].id)) == 1
        assert len(received) == 1 and len(created) == 1
        assert iso.types(convs[0].id) == ["conversation.created", "conversation.message_received"]
    finally:
        await iso.probe.stop()


async def test_x5_ticketing_worker_killed_between_db_commit_and_offset_commit_creates_one_ticket(system):
    settings, iso = await isolated(system)
    inbound = worker_process(settings, "inbound")
    try:
        account = await iso.account()
        conv = await iso.new_conversation(account)
        crashing = worker_process(settings, "ticketing", fault="after_commit_before_ack:ticketing.commands")
        create = c.CreateTicket(command_id=new_id("cmd-"), account_id=account, conversation_id=conv)
        await iso.publish(create)
        assert await wait_exit(crashing) == 17, crashing.stderr.read().decode()[-2000:]
        assert len(await iso.tickets_of(account)) == 1
        restarted = worker_process(settings, "ticketing")
        try:
            await iso.probe.wait_for(lambda r: r.type == "ticket.created" and conv in r.body["conversation_ids"])
            await caught_up(iso, "ticketing", "commands", TICKET_COMMANDS)
        finally:
            await stop(restarted)
        tickets = await iso.tickets_of(account)
        assert len(tickets) == 1
        assert iso.types(tickets[0].id) == ["ticket.created"]
        assert iso.rejections(create.command_id) == []
        assert iso.probe.matching(lambda r: r.topic.endswith(DEADLETTER)) == [], "the redelivery is a no-op"
    finally:
        await stop(inbound)
        await iso.probe.stop()


async def test_x3_inbound_worker_killed_after_its_relay_published_sends_those_events_again_with_the_same_ids(
        system, postgres):
    """The relay runs in a process of its own (ADR 17); a checkpoint there still stops the worker where
    it stands: the child asks its worker, which dies, and the child exits without deleting the rows.
    A database of its own: the session's inbound relay would otherwise hold the outbox lock of `inbound`."""
    settings, iso = await isolated(system)
    async with fresh_database(postgres) as url:
        settings = iso.settings = settings.model_copy(update={"database_url": url})
        session_engine, iso.engine = iso.engine, create_engine(url)
        try:
            await _published_twice(settings, iso)
        finally:
            await iso.engine.dispose()
            iso.engine = session_engine
            await iso.probe.stop()


async def _published_twice(settings: Settings, iso: System) -> None:
    """Killed after its relay published, then restarted: the same events again, under the same ids."""
    account = await iso.account()
    crashing = worker_process(settings, "inbound", fault="after_publish_before_mark_sent:inbound")
    msg = iso.inbound(account)
    await iso.publish(msg)
    assert await wait_exit(crashing) == 17, crashing.stderr.read().decode()[-2000:]
    first = await iso.probe.wait_for(lambda r: r.type == "conversation.message_received"
                                     and r.body["channel_message_id"] == msg.channel_message_id)
    conv = first[0].key
    assert await iso._outbox_empty() is False, "published, not yet deleted"
    restarted = worker_process(settings, "inbound")
    try:
        again = await iso.probe.wait_for(lambda r: r.type == "conversation.message_received" and r.key == conv,
                                         count=2, what="the event published again")
        await caught_up(iso, "inbound", "messages", INBOUND_MESSAGES)
    finally:
        await stop(restarted)
    assert len(again) == 2 and again[0].headers["ce_id"] == again[1].headers["ce_id"]
    assert len(await iso.messages_of(conv)) == 1


async def test_x3_a_worker_s_relay_process_ends_when_the_worker_is_killed(system):
    settings, iso = await isolated(system)
    worker = worker_process(settings, "inbound")
    try:
        relay: list[int] = []
        for _ in range(600):
            relay = [c for c in children(worker.pid)
                     if b"workers.delivery.relay_process" in Path(f"/proc/{c}/cmdline").read_bytes()]
            if relay:
                break
            await asyncio.sleep(0.1)
        assert len(relay) == 1, "the worker runs its relay in a child process"
        worker.kill()  # SIGKILL: nothing closes the pipe but the kernel
        await wait_exit(worker)
        for _ in range(300):
            if not running(relay[0]):
                break
            await asyncio.sleep(0.1)
        assert not running(relay[0]), "the relay outlived its worker"
    finally:
        await stop(worker)
        await iso.probe.stop()


async def test_x5_database_outage_pauses_and_retries_and_never_dead_letters(system, caplog):
    url = make_url(system.settings.database_url)
    proxy = OutageProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    settings, iso = await isolated(system)
    settings = settings.model_copy(update=dict(database_url=url.set(port=proxy.port).render_as_string(hide_password=False)))
    worker = build_worker("inbound", settings)
    await worker.start()
    try:
        account = await iso.account()
        await iso.new_conversation(account)  # the worker is up and knows the account
        await proxy.cut()
        caplog.set_level(logging.WARNING, logger="ticketflow.delivery")
        msg = iso.inbound(account)
        await iso.publish(msg)
        for _ in range(600):  # wait until the worker has met the outage at least twice
            if sum("transient failure" in r.getMessage() for r in caplog.records) >= 2:
                break
            await asyncio.sleep(0.1)
        assert sum("transient failure" in r.getMessage() for r in caplog.records) >= 2
        await proxy.restore()
        await iso.probe.wait_for(lambda r: r.type == "conversation.message_received"
                                 and r.body["channel_message_id"] == msg.channel_message_id, what="message after outage")
        await caught_up(iso, "inbound", "messages", INBOUND_MESSAGES)
        assert iso.probe.matching(lambda r: r.topic.endswith(DEADLETTER)) == []
        assert len(await iso.conversations_of(account)) == 2
    finally:
        await worker.stop()
        await proxy.cut()
        await iso.probe.stop()
