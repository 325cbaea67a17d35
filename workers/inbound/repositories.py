"""The inbound worker's tables as repositories of its domain values (it is the only writer of
contacts, conversations and messages), and its unit of work.

Repositories remember what they loaded and what was written in this unit (a batch of messages), so
a later message of the batch sees an earlier one's effects; `InboundUnit.prefetch` loads what a whole
batch needs in a handful of queries; writes go to the unit's buffers and reach the database in bulk
at commit. On PostgreSQL, conversations are loaded `FOR UPDATE`: the messages consumer and the
commands consumer may touch one conversation at once, and the second waits for the first's commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, union

from contracts import commands as c
from contracts.common import Channel, ConversationStatus, Workspace
from contracts.inbound import InboundMessage
from storage.columns import plain_values, row_of
from storage.queries import any_of, any_pair, built, key_tuples, keys
from storage.tables import contacts, conversations, messages
from storage.unit_of_work import UnitOfWork, now_utc, unit_ref
from workers.accounts import Accounts
from workers.delivery.errors import BadMessage
from workers.inbound.domain import (
    Contact,
    Conversation,
    ConversationDecision,
    Message,
    normalise_email,
    normalise_phone,
)
from workers.unit import WorkUnit

OWNER = "inbound"
ThreadKey = tuple[str, str, str]
"""(account, channel, thread key)"""


def _conversation(row: Any) -> Conversation:
    return Conversation(
        id=row.id, account_id=row.account_id, contact_id=row.contact_id, channel=Channel(row.channel),
        thread_key=row.thread_key, subject=row.subject, status=ConversationStatus(row.status), owner_id=row.owner_id,
        workspace=Workspace(row.workspace), deleted=row.deleted, version=row.version, created_at=row.created_at,
    )


def _contact(row: Any) -> Contact:
    return Contact(id=row.id, account_id=row.account_id, email=row.email, phone=row.phone, name=row.name)


def _thread(msg: InboundMessage) -> ThreadKey:
    return (msg.account_id, msg.channel.value, msg.channel_thread_key)


class Conversations:
    """Conversations by id and by thread, loaded once per unit and written at commit."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._by_id: dict[str, Conversation | None] = {}
        self._threads: dict[ThreadKey, Conversation | None] = {}
        self._stored: set[str] = set()

    def _select(self, where: Any) -> Any:
        query = select(conversations).where(*where)
        return query.with_for_update() if self.uow.postgres else query

    def _remember(self, rows: Iterable[Any]) -> None:
        for row in rows:
            conv = _conversation(row)
            self._by_id.setdefault(conv.id, conv)
            self._stored.add(conv.id)

    async def load(self, ids: Iterable[str]) -> None:
        wanted = sorted({i for i in ids if i not in self._by_id})
        if wanted:
            pg = self.uow.postgres
            query = built(("conversations by id", pg), lambda: self._select(
                [any_of(conversations.c.id, "ids", pg)]).order_by(conversations.c.id))
            self._remember((await self.uow.conn.execute(query, keys("ids", wanted))).all())
            self._by_id.update({i: None for i in wanted if i not in self._by_id})

    async def load_threads(self, keys: Iterable[ThreadKey]) -> None:
        wanted = sorted({i for i in keys if i not in self._threads})
        if not wanted:
            return
        pg = self.uow.postgres
        query = built(("conversations by thread", pg), lambda: self._select([
            any_pair((conversations.c.account_id, conversations.c.channel, conversations.c.thread_key), "threads", pg),
            conversations.c.deleted.is_(False)]).order_by(conversations.c.id))
        rows = (await self.uow.conn.execute(query, key_tuples("threads", wanted, 3, pg))).all()
        self._remember(rows)
        newest: dict[ThreadKey, Any] = {}
        for row in rows:
            key = (row.account_id, row.channel, row.thread_key)
            if key not in newest or (row.created_at, row.id) > (newest[key].created_at, newest[key].id):
                newest[key] = row
        for key in wanted:
            self._threads[key] = self._by_id.get(newest[key].id) if key in newest else None

    async def get(self, conversation_id: str) -> Conversation | None:
        await self.load([conversation_id])
        return self._by_id[conversation_id]

    async def thread_of(self, msg: InboundMessage) -> Conversation | None:
        """The newest conversation of the message's thread that is not in the trash (C1)."""
        await self.load_threads([_thread(msg)])
        return self._threads[_thread(msg)]

    def save(self, conv: Conversation) -> None:
        values = {**plain_values(row_of(conv)), "updated_at": self.uow.now}
        if conv.id in self._stored:
            self.uow.update(conversations, "id", values)
        else:
            self.uow.insert(conversations, values)
            self._stored.add(conv.id)
        self._by_id[conv.id] = conv
        key = (conv.account_id, conv.channel.value, conv.thread_key)
        current = self._threads.get(key)
        if conv.deleted:
            if current is not None and current.id == conv.id:
                self._threads[key] = None
        elif current is None or current.id == conv.id or conv.created_at >= current.created_at:
            self._threads[key] = conv


def _by_address(pg: bool) -> Any:
    """Contacts whose (account, email) or (account, phone) is one of the pairs given, oldest first: a
    probe of each unique index per pair. (`account IN accounts AND (email IN xs OR phone IN xs)` probed
    every account with every address on PostgreSQL, and read all of an account's contacts on SQLite.)"""
    both = union(select(contacts).where(any_pair((contacts.c.account_id, contacts.c.email), "emails", pg)),
                 select(contacts).where(any_pair((contacts.c.account_id, contacts.c.phone), "phones", pg))).subquery()
    return select(both).order_by(both.c.created_at, both.c.id)


class Contacts:
    """Contacts by id and by address (C1), loaded once per unit; new ones written at commit."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._by_id: dict[str, Contact | None] = {}
        self._addresses: set[tuple[str, str]] = set()
        self._by_address: dict[tuple[str, str], list[Contact]] = {}

    def _remember(self, rows: Iterable[Any]) -> None:
        for row in rows:
            contact = _contact(row)
            if contact.id in self._by_id:
                continue
            self._by_id[contact.id] = contact
            for address in (contact.email, contact.phone):
                if address:
                    self._by_address.setdefault((contact.account_id, address), []).append(contact)

    async def load(self, ids: Iterable[str]) -> None:
        wanted = sorted({i for i in ids if i not in self._by_id})
        if wanted:
            pg = self.uow.postgres
            query = built(("contacts by id", pg), lambda: select(contacts).where(any_of(contacts.c.id, "ids", pg)))
            self._remember((await self.uow.conn.execute(query, keys("ids", wanted))).all())
            self._by_id.update({i: None for i in wanted if i not in self._by_id})

    async def load_addresses(self, addresses: Iterable[tuple[str, str]]) -> None:
        """Load the contacts with any of these (account, email-or-phone), oldest first."""
        wanted = set(addresses) - self._addresses
        if not wanted:
            return
        pg = self.uow.postgres
        rows = (await self.uow.conn.execute(built(("contacts by address", pg), lambda: _by_address(pg)), {
            **key_tuples("emails", wanted, 2, pg), **key_tuples("phones", wanted, 2, pg)})).all()
        self._remember(rows)
        self._addresses |= wanted

    async def get(self, contact_id: str) -> Contact | None:
        await self.load([contact_id])
        return self._by_id[contact_id]

    async def with_address(self, account_id: str, email: str | None, phone: str | None) -> list[Contact]:
        """C1's candidates: the account's contacts with this email or this phone, oldest first."""
        keys = [(account_id, x) for x in (email, phone) if x]
        await self.load_addresses(keys)
        found: list[Contact] = []
        for key in keys:
            found += [k for k in self._by_address.get(key, []) if k not in found]
        return found

    def add(self, contact: Contact) -> None:
        self.uow.insert(contacts, {**row_of(contact), "created_at": now_utc()})
        self._remember([contact])


class Messages:
    """Which channel messages are stored (C2), loaded once per unit; new ones written at commit."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self._checked: set[ThreadKey] = set()
        self._stored: set[ThreadKey] = set()

    async def load(self, msgs: Iterable[InboundMessage]) -> None:
        wanted = {(m.account_id, m.channel.value, m.channel_message_id) for m in msgs} - self._checked
        if not wanted:
            return
        pg = self.uow.postgres
        columns = (messages.c.account_id, messages.c.channel, messages.c.channel_message_id)
        query = built(("messages by channel id", pg), lambda: select(*columns).where(any_pair(columns, "ids", pg)))
        rows = (await self.uow.conn.execute(query, key_tuples("ids", wanted, 3, pg))).all()
        self._stored |= {(r.account_id, r.channel, r.channel_message_id) for r in rows}
        self._checked |= wanted

    async def stored(self, msg: InboundMessage) -> bool:
        """C2: has this channel message been stored already?"""
        await self.load([msg])
        return (msg.account_id, msg.channel.value, msg.channel_message_id) in self._stored

    def add(self, message: Message, channel: Channel) -> None:
        self.uow.insert(messages, {**plain_values(row_of(message)), "channel": channel.value})
        if message.channel_message_id is not None:
            self._stored.add((message.account_id, channel.value, message.channel_message_id))


class InboundUnit(WorkUnit[ConversationDecision]):
    """The inbound worker's unit of work: its repositories, what a batch loads up front, and how a
    decision is saved."""

    conversations: Conversations
    contacts: Contacts
    messages: Messages
    accounts: Accounts

    async def __aenter__(self) -> InboundUnit:
        await super().__aenter__()
        me = unit_ref(self)
        self.conversations, self.contacts = Conversations(me), Contacts(me)
        self.messages, self.accounts = Messages(me), Accounts(self.conn, OWNER)
        return self

    async def prefetch(self, batch: Sequence[object]) -> None:
        """Everything the batch's handlers will load, in one query per kind."""
        inbound = [m for m in batch if isinstance(m, InboundMessage)]
        commands = [m for m in batch if isinstance(m, c.ConversationCommand)]
        await self.accounts.load({m.account_id for m in inbound} | {m.account_id for m in commands})
        if inbound:
            await self.messages.load(inbound)
            await self.conversations.load_threads({_thread(m) for m in inbound})
            addresses = {(m.account_id, x) for m in inbound
                         for x in (normalise_email(m.sender_email), normalise_phone(m.sender_phone)) if x}
            await self.contacts.load_addresses(addresses)
        if commands:
            await self.remember_processed((m.account_id, m.command_id) for m in commands)
            await self.conversations.load({m.conversation_id for m in commands})
            convs = [await self.conversations.get(m.conversation_id) for m in commands]
            await self.contacts.load({conv.contact_id for conv in convs if conv is not None})

    async def save(self, decision: ConversationDecision) -> None:
        if decision.new_contact is not None:
            self.contacts.add(decision.new_contact)
        if decision.conversation is not None:
            self.conversations.save(decision.conversation)
            if decision.message is not None:
                self.messages.add(decision.message, decision.conversation.channel)

    async def conclude_message(self, msg: InboundMessage, decision: ConversationDecision) -> None:
        """An inbound message's outcome: stored with its events, or (refused) a dead letter (X4). No
        processed id: the stored message's unique (account, channel, channel_message_id) is what makes a
        replay change nothing (C2, ADR 2), and nothing ever read the processed id written here."""
        self.final(decision.rejection)
        if decision.rejection is not None:
            raise BadMessage(decision.rejection.reason.value, decision.rejection.detail)
        await self.save(decision)
        for event in decision.events:
            await self.publish(event)
