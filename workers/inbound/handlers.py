"""The inbound worker's handlers: parse, load, call the rule, save, emit. No decisions here."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter

from contracts import commands as c
from contracts.inbound import InboundMessage
from storage.unit_of_work import UnitOfWork
from workers.accounts import load_account
from workers.command_flow import ACCOUNTS_PROJECTION, account_for, record_outcome
from workers.decision import Decision
from workers.delivery.emit import emit
from workers.delivery.errors import BadMessage, NotYetKnown
from workers.delivery.parsing import envelope_of, parse
from workers.inbound import rules, store
from workers.inbound.model import NewIds
from workers.runtime import Worker

inbound_adapter: TypeAdapter[InboundMessage] = TypeAdapter(InboundMessage)
OWNER = "inbound"


def _new_id() -> str:
    return str(uuid.uuid4())


async def receive_message(worker: Worker, record: Any, caught_up: frozenset[str]) -> None:
    """C1, C2, C3 for one inbound channel message."""
    msg: InboundMessage = parse(record, inbound_adapter, "inbound channel message")
    cause = envelope_of(record)
    message_key = f"inbound:{msg.account_id}:{msg.channel.value}:{msg.channel_message_id}"
    now = datetime.now(timezone.utc)
    async with UnitOfWork(worker.engine, f"{OWNER}.messages", OWNER) as uow:
        if await store.channel_message_seen(uow.conn, msg.account_id, msg.channel, msg.channel_message_id):
            return  # C2: stored once, its events produced once
        account = await load_account(uow.conn, OWNER, msg.account_id)
        if account is None:
            if ACCOUNTS_PROJECTION not in caught_up:
                raise NotYetKnown(ACCOUNTS_PROJECTION, msg.account_id)
            raise BadMessage("unknown_account", f"account {msg.account_id!r} has not been published on the accounts topic")
        email, phone = rules.normalise_email(msg.sender_email), rules.normalise_phone(msg.sender_phone)
        found = await store.find_contact(uow.conn, msg.account_id, email, phone)
        ids = NewIds(conversation_id=_new_id(), contact_id=_new_id(), message_id=_new_id())
        contact, is_new = rules.resolve_contact(msg, found, ids.contact_id)
        if is_new:
            await store.insert_contact(uow.conn, contact)
        thread = await store.find_thread(uow.conn, msg.account_id, msg.channel, msg.channel_thread_key)
        decision = rules.receive_inbound_message(msg, account, thread, contact, ids, now)
        assert decision.state is not None
        await store.save_conversation(uow.conn, decision.state, thread)
        await store.insert_message(uow.conn, decision.extra["message"], msg.channel)
        await emit(uow, worker.settings.topic_prefix, worker.source, decision.events, cause)
        await uow.mark_processed(msg.account_id, message_key)
    worker.committed()


async def handle_command(worker: Worker, record: Any, caught_up: frozenset[str]) -> None:
    """C4-C7, trash and move-to-help-desk, for one conversation command."""
    cmd = parse(record, c.conversation_command_adapter, "conversation command")
    cause = envelope_of(record)
    now = datetime.now(timezone.utc)
    async with UnitOfWork(worker.engine, f"{OWNER}.commands", OWNER) as uow:
        if await uow.already_processed(cmd.account_id, cmd.command_id):
            return
        account = await account_for(uow, OWNER, cmd, caught_up)
        if isinstance(account, Decision):
            decision: Decision[Any] = account
        else:
            conv = await store.get_conversation(uow.conn, cmd.conversation_id)
            contact = await store.get_contact(uow.conn, conv.contact_id) if conv else None
            decision = rules.decide_conversation_command(cmd, conv, contact, now, _new_id())
            if decision.state is not None:
                await store.save_conversation(uow.conn, decision.state, conv)
            if "message" in decision.extra and conv is not None:
                await store.insert_message(uow.conn, decision.extra["message"], conv.channel)
        await record_outcome(uow, worker.settings.topic_prefix, worker.source, cmd, decision, now,
                             cmd.conversation_id, cause)
    worker.committed()
