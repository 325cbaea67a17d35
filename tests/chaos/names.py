"""What a chaos run knows of Ticketflow, all of it from the outside (README, contracts/topics.py): the
topic names, the consumer groups `<prefix>ticketflow.<worker>.<purpose>`, the CloudEvents headers, the
command line, and the tables it reads at the end. Nothing here imports a worker, so the harness keeps
working while their insides change."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from contracts.topics import (
    ACCOUNTS,
    CONVERSATION_COMMANDS,
    CONVERSATION_COMMANDS_INTERNAL,
    CONVERSATION_EVENTS,
    INBOUND_MESSAGES,
    TICKET_COMMANDS,
    TICKET_COMMANDS_INTERNAL,
    TICKET_EVENTS,
)
from tests.chaos.infra import command

WORKER_GROUPS: tuple[tuple[str, str, str], ...] = (
    ("inbound", "messages", INBOUND_MESSAGES), ("inbound", "commands", CONVERSATION_COMMANDS),
    ("inbound", "sync-commands", CONVERSATION_COMMANDS_INTERNAL),
    ("inbound", "accounts", ACCOUNTS), ("ticketing", "commands", TICKET_COMMANDS),
    ("ticketing", "sync-commands", TICKET_COMMANDS_INTERNAL),
    ("ticketing", "conversations", CONVERSATION_EVENTS), ("ticketing", "accounts", ACCOUNTS),
    ("sync", "ticket-events", TICKET_EVENTS), ("sync", "conversation-events", CONVERSATION_EVENTS),
)
"""(worker, purpose, topic) of every consumer group the workers run, as the README lists them
(tests/chaos/test_names.py holds it to the workers' own wiring)."""


@dataclass(frozen=True)
class Run:
    """Where one run's Ticketflow lives: broker, database, topic prefix."""

    bootstrap: str
    database_url: str
    """SQLAlchemy URL the workers get (postgresql+asyncpg://...)."""
    prefix: str
    replication_factor: int = 1
    consumers_per_input: int = 1

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def group(self, worker: str, purpose: str) -> str:
        return f"{self.prefix}ticketflow.{worker}.{purpose}"

    @property
    def dsn(self) -> str:
        """The database URL for asyncpg itself."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)

    def env(self) -> dict[str, str]:
        """The environment of a worker process or a `ticketflow` command of this run."""
        return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "DATABASE_URL": self.database_url,
                "TICKETFLOW_TOPIC_PREFIX": self.prefix, "TICKETFLOW_REPLICATION_FACTOR": str(self.replication_factor),
                "TICKETFLOW_CONSUMERS_PER_INPUT": str(self.consumers_per_input)}


async def ticketflow(run: Run, *args: str, timeout: float = 180.0) -> str:
    """`python -m ticketflow.cli ARGS` for this run (the operator's command line); its stdout."""
    return await command([sys.executable, "-m", "ticketflow.cli", *args], run.env(), timeout)


async def partitions_of(bootstrap: str, topics: list[str]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return sorted((TopicPartition(t["topic"], p["partition"]) for t in described if t["error_code"] == 0
                   for p in t["partitions"]), key=lambda tp: (tp.topic, tp.partition))


def producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    """Like every producer in front of Ticketflow should be: acks from all in-sync replicas, idempotent,
    and able to start a new idempotent session after a broker restart refused its sequence, as the Java
    and librdkafka clients do. aiokafka 0.14.0 cannot (ADR 12): the harness installs the same client fix
    the workers carry, or its own traffic stops for good at the first such restart (it did, in the
    second full run: 153,061 sends refused)."""
    from workers.aiokafka_fixes import install

    install()
    return AIOKafkaProducer(bootstrap_servers=bootstrap, client_id=client_id, acks="all", enable_idempotence=True,
                            linger_ms=5, request_timeout_ms=30_000)


def cloudevents(message_id: str, kind: str, source: str, subject: str, account_id: str) -> list[tuple[str, bytes]]:
    """The CloudEvents 1.0 binary-mode headers (README, "Envelope")."""
    headers = {"ce_specversion": "1.0", "ce_id": message_id, "ce_type": kind, "ce_source": source,
               "ce_time": datetime.now(UTC).isoformat(), "ce_subject": subject, "ce_accountid": account_id,
               "content-type": "application/json"}
    return [(k, v.encode()) for k, v in headers.items()]
