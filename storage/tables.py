"""Every table, and which worker writes it (one writer per table; readers may be anyone).

| table                      | writer              |
|----------------------------|---------------------|
| processed_messages         | each consumer, rows keyed by its name |
| outbox                     | each worker, rows keyed by its name   |
| account_views              | inbound and ticketing, rows keyed by owner |
| contacts, conversations, messages | inbound      |
| tickets, ticket_conversations, conversation_refs | ticketing |
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from storage.types import UtcDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)

processed_messages = Table(
    "processed_messages", metadata,
    Column("consumer", String(100), primary_key=True),
    Column("account_id", ID, primary_key=True, server_default=""),  # a command id is the sender's: unique only within its account
    Column("message_id", String(200), primary_key=True),
    Column("processed_at", UtcDateTime(), nullable=False),
    Index(None, "processed_at"),  # the relay's prune finds expired ids without reading the table (0006)
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("producer", String(50), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("key", String(600), nullable=False),
    Column("headers", JSON, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("failed_at", UtcDateTime(), nullable=True),  # parked: the broker can never take it (ADR 8)
    Column("failure", Text, nullable=True),
    # The relay's read, in id order, stopping after a round's rows; the backlog sampler's count (0007).
    # Over (producer, sent_at, id) PostgreSQL could not use the index's order (`IS NULL` is no equality)
    # and read the whole backlog, or walked the primary key through other workers' rows, every round.
    Index("ix_outbox_unsent", "producer", "id",
          postgresql_where=text("sent_at IS NULL"), sqlite_where=text("sent_at IS NULL")),
    # Rows marked sent (an operator discarded them): the prune's (0007).
    Index("ix_outbox_sent", "producer", "sent_at",
          postgresql_where=text("sent_at IS NOT NULL"), sqlite_where=text("sent_at IS NOT NULL")),
    # Parked rows only (rare): the relay asks, per unsent row, whether a parked row of its key came
    # before it. Over (producer, failed_at), SQLite read the unsent rows through that index, walking
    # every sent row kept for an hour, each round (migration 0005).
    Index("ix_outbox_parked", "producer", "topic", "key", "id",
          postgresql_where=text("failed_at IS NOT NULL AND sent_at IS NULL"),
          sqlite_where=text("failed_at IS NOT NULL AND sent_at IS NULL")),
)

account_views = Table(
    "account_views", metadata,
    Column("owner", String(50), primary_key=True),
    Column("account_id", ID, primary_key=True),
    Column("body", JSON, nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

contacts = Table(
    "contacts", metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("name", String(200)),
    Column("created_at", UtcDateTime(), nullable=False),
    Index(None, "account_id", "email", unique=True),  # C1: one contact per address in an account
    Index(None, "account_id", "phone", unique=True),
)

conversations = Table(
    "conversations", metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("contact_id", ID, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("thread_key", String(512), nullable=False),
    Column("subject", String(500)),
    Column("status", String(10), nullable=False),
    Column("owner_id", String(128)),
    Column("workspace", String(20), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index(None, "account_id", "channel", "thread_key"),
    Index(None, "contact_id"),
)

messages = Table(
    "messages", metadata,
    Column("id", ID, primary_key=True),
    Column("conversation_id", ID, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("direction", String(10), nullable=False),
    Column("channel_message_id", String(512)),
    Column("author_id", String(128)),
    Column("text", Text, nullable=False),
    Column("sent_at", UtcDateTime(), nullable=False),
    UniqueConstraint("account_id", "channel", "channel_message_id"),
    Index(None, "conversation_id"),
)

tickets = Table(
    "tickets", metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("subject", String(500), nullable=False),
    Column("description", Text),
    Column("pipeline", String(100), nullable=False),
    Column("status", String(100), nullable=False),
    Column("state", String(10), nullable=False),
    Column("priority", String(10)),
    Column("owner_id", String(128)),
    Column("source_channel", String(20), nullable=False),
    Column("category", String(200)),
    Column("workspace", String(20), nullable=False),
    Column("properties", JSON, nullable=False),
    Column("create_date", UtcDateTime(), nullable=False),
    Column("close_date", UtcDateTime()),
    Column("deleted", Boolean, nullable=False),
    Column("merged_into", ID),
    Column("version", Integer, nullable=False),
    Column("owner_set_at", UtcDateTime()),
    Index(None, "account_id"),
)

ticket_conversations = Table(
    "ticket_conversations", metadata,
    Column("conversation_id", ID, primary_key=True),  # T2: one ticket per conversation
    Column("ticket_id", ID, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("position", Integer, nullable=False),
    Index(None, "ticket_id"),
)

conversation_refs = Table(
    "conversation_refs", metadata,
    Column("id", ID, primary_key=True),
    Column("account_id", ID, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("subject", String(500)),
    Column("owner_id", String(128)),
    Column("workspace", String(20), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("owner_changed_at", UtcDateTime()),
)
