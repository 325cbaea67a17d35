"""The inbound worker's slice, pure: its aggregates (contacts, conversations, messages) and its rules,
C1-C7 and the conversation side of S1, S2, S5 and T8.

Every rule takes the current state and a message and returns a `ConversationDecision`; nothing here
does I/O. The handlers (`workers.inbound.handlers`) load what a rule needs and save what it decides.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from contracts import commands as c
from contracts import events as e
from contracts.accounts import Account
from contracts.commands import SYNC_ACTOR
from contracts.common import (
    Channel,
    ConversationStatus,
    Direction,
    ReplyToClosedPolicy,
    Workspace,
)
from contracts.inbound import InboundMessage
from contracts.rejections import Reason
from workers.decision import ACCOUNTS_PROJECTION, Decision, Missing


@dataclass(frozen=True)
class Contact:
    id: str
    account_id: str
    email: str | None
    phone: str | None
    name: str | None


@dataclass(frozen=True)
class Conversation:
    id: str
    account_id: str
    contact_id: str
    channel: Channel
    thread_key: str
    subject: str | None
    status: ConversationStatus
    owner_id: str | None
    workspace: Workspace
    deleted: bool
    version: int
    created_at: datetime


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    account_id: str
    direction: Direction
    channel_message_id: str | None
    author_id: str | None
    text: str
    sent_at: datetime


class NewIds:
    """Ids a rule may hand out. The handler passes its id source so the rule stays pure; each id is made
    the first time the rule asks for it (most messages join a conversation and a contact that exist).
    Tests give the ids themselves."""

    __slots__ = ("_make", "_ids")

    def __init__(self, make: Callable[[], str] | None = None, *, conversation_id: str | None = None,
                 contact_id: str | None = None, message_id: str | None = None) -> None:
        self._make = make
        self._ids = {"conversation": conversation_id, "contact": contact_id, "message": message_id}

    def _id(self, kind: str) -> str:
        found = self._ids[kind]
        if found is None:
            assert self._make is not None, f"no {kind} id given and no id source"
            found = self._ids[kind] = self._make()
        return found

    @property
    def conversation_id(self) -> str:
        return self._id("conversation")

    @property
    def contact_id(self) -> str:
        return self._id("contact")

    @property
    def message_id(self) -> str:
        return self._id("message")


@dataclass(frozen=True)
class ConversationDecision(Decision):
    """The conversation after the rule (None: unchanged), a message to store, a contact to create."""

    conversation: Conversation | None = None
    message: Message | None = None
    new_contact: Contact | None = None

    @property
    def noop(self) -> bool:
        return self.conversation is None and not self.events and self.rejection is None


NOTHING = ConversationDecision()


def normalise_email(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def normalise_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    return ("+" + digits) if digits else None


def pick_contact(candidates: Sequence[Contact], email: str | None) -> Contact | None:
    """C1's tie-break among the account's contacts with the sender's email or phone: the one with the
    email first, else the oldest (`candidates` come oldest first)."""
    by_email = next((k for k in candidates if email and k.email == email), None)
    return by_email or (candidates[0] if candidates else None)


def resolve_contact(msg: InboundMessage, found: Contact | None, new_id: str) -> tuple[Contact, bool]:
    """C1: the contact found by email or phone within the account, else a new one. Returns (contact, is_new)."""
    if found is not None:
        return found, False
    return (
        Contact(
            id=new_id,
            account_id=msg.account_id,
            email=normalise_email(msg.sender_email),
            phone=normalise_phone(msg.sender_phone),
            name=msg.sender_name,
        ),
        True,
    )


def conversation_title(text: str, limit: int = 80) -> str:
    """A subject for channels without one (chat, WhatsApp): the first line of the first message."""
    first = text.strip().splitlines()[0] if text.strip() else "(no text)"
    return first if len(first) <= limit else first[: limit - 1] + "…"


def receive(msg: InboundMessage, already_stored: bool, account: Account | None, thread: Conversation | None,
            candidates: Sequence[Contact], ids: NewIds, now: datetime) -> ConversationDecision:
    """C1, C2 and C3 for one channel message, from everything the handler loaded."""
    if already_stored:
        return NOTHING  # C2: stored once, its events produced once
    if account is None:
        return ConversationDecision.refuse(
            Reason.UNKNOWN_ACCOUNT, f"account {msg.account_id!r} has not been published on the accounts topic",
            unresolved=Missing(ACCOUNTS_PROJECTION, msg.account_id))
    found = pick_contact(candidates, normalise_email(msg.sender_email))
    contact, is_new = (found, False) if found is not None else resolve_contact(msg, None, ids.contact_id)
    decision = receive_inbound_message(msg, account, thread, contact, ids, now)
    return replace(decision, new_contact=contact) if is_new else decision


def receive_inbound_message(
    msg: InboundMessage,
    account: Account,
    thread: Conversation | None,
    contact: Contact,
    ids: NewIds,
    now: datetime,
) -> ConversationDecision:
    """C1 and C3: thread the message into the latest live conversation of its thread, or open one.

    `thread` is the newest non-deleted conversation with the same account + channel + thread key.
    (C2, the redelivery check on channel message id, happens before this rule is called.)
    A closed thread is reopened, or left closed with a new conversation started, per the account's
    reply-to-closed setting.
    """
    events: list[Any] = []
    conv = thread
    if conv is not None and conv.status is ConversationStatus.CLOSED:
        if account.settings.reply_to_closed is ReplyToClosedPolicy.REOPEN:
            conv = _with(conv, status=ConversationStatus.OPEN, version=conv.version + 1)
            events.append(_ev(e.ConversationReopened, conv, now, cause="contact_message"))
        else:
            conv = None
    if conv is None:
        conv = Conversation(
            id=ids.conversation_id,
            account_id=msg.account_id,
            contact_id=contact.id,
            channel=msg.channel,
            thread_key=msg.channel_thread_key,
            subject=msg.subject or conversation_title(msg.text),
            status=ConversationStatus.OPEN,
            owner_id=None,
            workspace=Workspace.INBOX,
            deleted=False,
            version=1,
            created_at=now,
        )
        events.append(
            _ev(
                e.ConversationCreated, conv, now,
                contact_id=contact.id, channel=conv.channel, channel_thread_key=conv.thread_key,
                subject=conv.subject, owner_id=None, status=conv.status, workspace=conv.workspace,
            )
        )
    conv = _with(conv, version=conv.version + 1)
    message = Message(
        id=ids.message_id, conversation_id=conv.id, account_id=conv.account_id,
        direction=Direction.INCOMING, channel_message_id=msg.channel_message_id,
        author_id=None, text=msg.text, sent_at=msg.sent_at,
    )
    events.append(
        _ev(
            e.ConversationMessageReceived, conv, now,
            message_id=message.id, channel_message_id=msg.channel_message_id,
            contact_id=contact.id, text=msg.text, sent_at=msg.sent_at,
        )
    )
    return ConversationDecision(events=tuple(events), conversation=conv, message=message)


def decide_conversation_command(
    cmd: c.ConversationCommand,
    account: Account | None,
    conv: Conversation | None,
    contact: Contact | None,
    now: datetime,
    new_message_id: str,
) -> ConversationDecision:
    """C4-C7, trash (S5/T7) and move-to-help-desk (T8) on one conversation.

    X1: a conversation of another account is reported as not found. Repeating a state the
    conversation already has (close a closed one, trash a trashed one) changes nothing and is not
    an error: the sync worker relies on that to end its chains (S5, S7).
    """
    if account is None:
        return ConversationDecision.refuse(Reason.UNKNOWN_ACCOUNT, f"account {cmd.account_id!r} is unknown",
                                           unresolved=Missing(ACCOUNTS_PROJECTION, cmd.account_id))
    if conv is None or conv.account_id != cmd.account_id:
        return ConversationDecision.refuse(Reason.NOT_FOUND,
                                           f"no conversation {cmd.conversation_id} in account {cmd.account_id}")
    if conv.deleted:
        if isinstance(cmd, c.TrashConversation):
            return NOTHING
        return ConversationDecision.refuse(Reason.CONVERSATION_DELETED, f"conversation {conv.id} is in the trash")
    return CONVERSATION_RULES[type(cmd)](cmd, conv, contact, now, new_message_id)


def _assign(cmd: c.AssignConversationOwner, conv: Conversation, _contact: Contact | None, now: datetime,
            _message_id: str) -> ConversationDecision:
    """C5: assign, change or remove the owner."""
    if cmd.owner_id == conv.owner_id:
        return NOTHING
    new = replace(conv, owner_id=cmd.owner_id, version=conv.version + 1)
    return _changed(new, _ev(e.ConversationOwnerChanged, new, now, owner_id=cmd.owner_id,
                             previous_owner_id=conv.owner_id))


def _close(_cmd: c.CloseConversation, conv: Conversation, _contact: Contact | None, now: datetime,
           _message_id: str) -> ConversationDecision:
    """C6: closes this conversation only."""
    if conv.status is ConversationStatus.CLOSED:
        return NOTHING
    new = replace(conv, status=ConversationStatus.CLOSED, version=conv.version + 1)
    return _changed(new, _ev(e.ConversationClosed, new, now))


def _reopen(cmd: c.ReopenConversation, conv: Conversation, _contact: Contact | None, now: datetime,
            _message_id: str) -> ConversationDecision:
    """C7, and S2's reopen from the sync worker."""
    if conv.status is ConversationStatus.OPEN:
        return NOTHING
    new = replace(conv, status=ConversationStatus.OPEN, version=conv.version + 1)
    cause = "ticket_reopened" if cmd.actor_id == SYNC_ACTOR else "agent"
    return _changed(new, _ev(e.ConversationReopened, new, now, cause=cause))


def _trash(_cmd: c.TrashConversation, conv: Conversation, _contact: Contact | None, now: datetime,
           _message_id: str) -> ConversationDecision:
    """S5/T7: to the trash (soft delete)."""
    new = replace(conv, deleted=True, version=conv.version + 1)
    return _changed(new, _ev(e.ConversationDeleted, new, now))


def _to_help_desk(_cmd: c.MoveConversationToHelpDesk, conv: Conversation, _contact: Contact | None, now: datetime,
                  _message_id: str) -> ConversationDecision:
    """T8: the conversation follows its ticket into the help desk."""
    if conv.workspace is Workspace.HELP_DESK:
        return NOTHING
    new = replace(conv, workspace=Workspace.HELP_DESK, version=conv.version + 1)
    return _changed(new, _ev(e.ConversationMovedToHelpDesk, new, now))


def _changed(conv: Conversation, *events: Any) -> ConversationDecision:
    return ConversationDecision(events=events, conversation=conv)





def _reply(
    cmd: c.ReplyToConversation, conv: Conversation, contact: Contact | None, now: datetime, message_id: str
) -> ConversationDecision:
    """C4: store the reply as an outgoing message and publish it for the channel to deliver."""
    new = replace(conv, version=conv.version + 1)
    message = Message(
        id=message_id, conversation_id=conv.id, account_id=conv.account_id, direction=Direction.OUTGOING,
        channel_message_id=None, author_id=cmd.actor_id, text=cmd.text, sent_at=now,
    )
    sent = _ev(e.ConversationMessageSent, new, now, message_id=message_id, author_id=cmd.actor_id, text=cmd.text)
    outbound = e.OutboundMessage(
        message_id=message_id, conversation_id=conv.id, account_id=conv.account_id, channel=conv.channel,
        channel_thread_key=conv.thread_key, to_email=contact.email if contact else None,
        to_phone=contact.phone if contact else None, subject=conv.subject, text=cmd.text,
    )
    return ConversationDecision(events=(sent, outbound), conversation=new, message=message)


def _with(conv: Conversation, **changes: Any) -> Conversation:
    """`replace(conv, **changes)` without `dataclasses.replace`'s introspection of the fields on every call
    (it runs for every channel message)."""
    return Conversation(**{**conv.__dict__, **changes})


def _ev(cls: type, conv: Conversation, now: datetime, **fields: object) -> Any:
    return cls(conversation_id=conv.id, account_id=conv.account_id, version=conv.version, occurred_at=now, **fields)


Rule = Callable[[Any, Conversation, Contact | None, datetime, str], ConversationDecision]
"""rule(command, conversation, its contact, now, a new message id)"""

CONVERSATION_RULES: dict[type, Rule] = {
    c.ReplyToConversation: _reply,
    c.AssignConversationOwner: _assign,
    c.CloseConversation: _close,
    c.ReopenConversation: _reopen,
    c.TrashConversation: _trash,
    c.MoveConversationToHelpDesk: _to_help_desk,
}
"""Every conversation command's rule, by its type."""
