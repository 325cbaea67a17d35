"""Pure rules of the inbound worker's slice: C1-C7 and the conversation side of S1, S2, S5, T8.

Each rule takes the current state and a message and returns a Decision; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from contracts import commands as c
from contracts import events as e
from contracts.accounts import Account
from contracts.commands import SYNC_ACTOR
from contracts.common import ConversationStatus, Direction, ReplyToClosedPolicy, Workspace
from contracts.inbound import InboundMessage
from contracts.rejections import Reason
from workers.decision import NOTHING, Decision, reject
from workers.inbound.model import Contact, Conversation, Message, NewIds


def normalise_email(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def normalise_phone(phone: str | None) -> str | None:
    if not phone:
        return None
    digits = "".join(ch for ch in phone if ch.isdigit())
    return ("+" + digits) if digits else None


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


def receive_inbound_message(
    msg: InboundMessage,
    account: Account,
    thread: Conversation | None,
    contact: Contact,
    ids: NewIds,
    now: datetime,
) -> Decision[Conversation]:
    """C1 and C3: thread the message into the latest live conversation of its thread, or open one.

    `thread` is the newest non-deleted conversation with the same account + channel + thread key.
    (C2, the redelivery check on channel message id, happens before this rule is called.)
    A closed thread is reopened, or left closed with a new conversation started, per the account's
    reply-to-closed setting.
    """
    events: list[object] = []
    conv = thread
    if conv is not None and conv.status is ConversationStatus.CLOSED:
        if account.settings.reply_to_closed is ReplyToClosedPolicy.REOPEN:
            conv = replace(conv, status=ConversationStatus.OPEN, version=conv.version + 1)
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
    conv = replace(conv, version=conv.version + 1)
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
    return Decision(state=conv, events=tuple(events), extra={"message": message})


def decide_conversation_command(
    cmd: c.ConversationCommand,
    conv: Conversation | None,
    contact: Contact | None,
    now: datetime,
    new_message_id: str,
) -> Decision[Conversation]:
    """C4-C7, trash (S5/T7) and move-to-help-desk (T8) on one conversation.

    X1: a conversation of another account is reported as not found. Repeating a state the
    conversation already has (close a closed one, trash a trashed one) changes nothing and is not
    an error: the sync worker relies on that to end its chains (S5, S7).
    """
    if conv is None or conv.account_id != cmd.account_id:
        return reject(Reason.NOT_FOUND, f"no conversation {cmd.conversation_id} in account {cmd.account_id}")
    if conv.deleted:
        if isinstance(cmd, c.TrashConversation):
            return NOTHING
        return reject(Reason.CONVERSATION_DELETED, f"conversation {conv.id} is in the trash")

    if isinstance(cmd, c.ReplyToConversation):
        return _reply(cmd, conv, contact, now, new_message_id)
    if isinstance(cmd, c.AssignConversationOwner):
        if cmd.owner_id == conv.owner_id:
            return NOTHING
        new = replace(conv, owner_id=cmd.owner_id, version=conv.version + 1)
        return Decision(new, (_ev(e.ConversationOwnerChanged, new, now, owner_id=cmd.owner_id, previous_owner_id=conv.owner_id),))
    if isinstance(cmd, c.CloseConversation):
        if conv.status is ConversationStatus.CLOSED:
            return NOTHING
        new = replace(conv, status=ConversationStatus.CLOSED, version=conv.version + 1)
        return Decision(new, (_ev(e.ConversationClosed, new, now),))
    if isinstance(cmd, c.ReopenConversation):
        if conv.status is ConversationStatus.OPEN:
            return NOTHING
        new = replace(conv, status=ConversationStatus.OPEN, version=conv.version + 1)
        cause = "ticket_reopened" if cmd.actor_id == SYNC_ACTOR else "agent"
        return Decision(new, (_ev(e.ConversationReopened, new, now, cause=cause),))
    if isinstance(cmd, c.TrashConversation):
        new = replace(conv, deleted=True, version=conv.version + 1)
        return Decision(new, (_ev(e.ConversationDeleted, new, now),))
    if isinstance(cmd, c.MoveConversationToHelpDesk):
        if conv.workspace is Workspace.HELP_DESK:
            return NOTHING
        new = replace(conv, workspace=Workspace.HELP_DESK, version=conv.version + 1)
        return Decision(new, (_ev(e.ConversationMovedToHelpDesk, new, now),))
    raise TypeError(f"unhandled conversation command {type(cmd).__name__}")


def _reply(
    cmd: c.ReplyToConversation, conv: Conversation, contact: Contact | None, now: datetime, message_id: str
) -> Decision[Conversation]:
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
    return Decision(new, (sent, outbound), extra={"message": message})


def _ev(cls: type, conv: Conversation, now: datetime, **fields: object) -> object:
    return cls(conversation_id=conv.id, account_id=conv.account_id, version=conv.version, occurred_at=now, **fields)
