"""Shared builders for the unit tests of the pure rules (no I/O).

The builders are exposed as fixtures (``make_account``, ``make_conversation``, ...) rather than imported
from this module, so they keep working whatever other conftest.py files appear under tests/.
Defaults: account ``acme`` (starter, created 2023-01-01, default settings), conversation ``conv-1``
(email, open, in the inbox, no owner), ticket ``tkt-1`` on ``conv-1`` in ``support``/``new``.
Another account's id, for X1 tests, is ``globex``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from contracts.accounts import Account, AccountSettings
from contracts.common import Channel, ConversationStatus, StatusState, Tier, Workspace
from contracts.inbound import InboundMessage
from workers.inbound.domain import Contact, Conversation, NewIds
from workers.ticketing.domain import ConversationRef, Ticket

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
EARLIER = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
ACCOUNT_ID = "acme"
OTHER_ACCOUNT_ID = "globex"


def build_account(
    account_id: str = ACCOUNT_ID,
    tier: Tier | str = Tier.STARTER,
    created_at: datetime = datetime(2023, 1, 1, tzinfo=UTC),
    **settings: Any,
) -> Account:
    return Account(
        account_id=account_id,
        tier=Tier(tier),
        created_at=created_at,
        name=account_id.title(),
        settings=AccountSettings(**settings),
    )


def build_contact(
    id: str = "contact-1",
    account_id: str = ACCOUNT_ID,
    email: str | None = "ann@example.com",
    phone: str | None = None,
    name: str | None = "Ann",
) -> Contact:
    return Contact(id=id, account_id=account_id, email=email, phone=phone, name=name)


def build_conversation(
    id: str = "conv-1",
    account_id: str = ACCOUNT_ID,
    contact_id: str = "contact-1",
    channel: Channel = Channel.EMAIL,
    thread_key: str = "thread-1",
    subject: str | None = "Printer on fire",
    status: ConversationStatus = ConversationStatus.OPEN,
    owner_id: str | None = None,
    workspace: Workspace = Workspace.INBOX,
    deleted: bool = False,
    version: int = 2,
    created_at: datetime = EARLIER,
) -> Conversation:
    return Conversation(
        id=id, account_id=account_id, contact_id=contact_id, channel=channel, thread_key=thread_key,
        subject=subject, status=status, owner_id=owner_id, workspace=workspace, deleted=deleted,
        version=version, created_at=created_at,
    )


def build_ref(
    id: str = "conv-1",
    account_id: str = ACCOUNT_ID,
    channel: Channel = Channel.EMAIL,
    subject: str | None = "Printer on fire",
    owner_id: str | None = None,
    workspace: Workspace = Workspace.INBOX,
    deleted: bool = False,
    version: int = 2,
    owner_changed_at: datetime | None = None,
) -> ConversationRef:
    return ConversationRef(
        id=id, account_id=account_id, channel=channel, subject=subject, owner_id=owner_id,
        workspace=workspace, deleted=deleted, version=version, owner_changed_at=owner_changed_at,
    )


def build_ticket(
    id: str = "tkt-1",
    account_id: str = ACCOUNT_ID,
    subject: str = "Printer on fire",
    description: str | None = None,
    pipeline: str = "support",
    status: str = "new",
    state: StatusState = StatusState.OPEN,
    priority: str | None = None,
    owner_id: str | None = None,
    source_channel: Channel = Channel.EMAIL,
    category: str | None = None,
    workspace: Workspace = Workspace.INBOX,
    properties: dict[str, Any] | None = None,
    create_date: datetime = EARLIER,
    close_date: datetime | None = None,
    conversation_ids: tuple[str, ...] = ("conv-1",),
    deleted: bool = False,
    merged_into: str | None = None,
    version: int = 1,
    owner_set_at: datetime | None = None,
) -> Ticket:
    return Ticket(
        id=id, account_id=account_id, subject=subject, description=description, pipeline=pipeline,
        status=status, state=state, priority=priority, owner_id=owner_id, source_channel=source_channel,
        category=category, workspace=workspace, properties=dict(properties or {}), create_date=create_date,
        close_date=close_date, conversation_ids=conversation_ids, deleted=deleted, merged_into=merged_into,
        version=version, owner_set_at=owner_set_at,
    )


def build_inbound(**overrides: Any) -> InboundMessage:
    fields: dict[str, Any] = {
        "account_id": ACCOUNT_ID,
        "channel": Channel.EMAIL,
        "channel_message_id": "<msg-1@example.com>",
        "channel_thread_key": "thread-1",
        "sender_email": "ann@example.com",
        "sender_name": "Ann",
        "subject": "Printer on fire",
        "text": "Help, my printer is on fire.",
        "sent_at": EARLIER,
    }
    fields.update(overrides)
    return InboundMessage(**fields)


def build_ids(conversation_id: str = "conv-new", contact_id: str = "contact-new", message_id: str = "msg-new") -> NewIds:
    return NewIds(conversation_id=conversation_id, contact_id=contact_id, message_id=message_id)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_account():
    return build_account


@pytest.fixture
def make_contact():
    return build_contact


@pytest.fixture
def make_conversation():
    return build_conversation


@pytest.fixture
def make_ref():
    return build_ref


@pytest.fixture
def make_ticket():
    return build_ticket


@pytest.fixture
def make_inbound():
    return build_inbound


@pytest.fixture
def make_ids():
    return build_ids
