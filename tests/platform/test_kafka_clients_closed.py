"""X5 (ADR 5): the projection barrier's Kafka clients, opened on first use by whichever batches need
them, and the operator tools' clients. Batches of several consumers ask at once: they must share one admin client and one consumer, and
a broker that cannot be reached must leave no client open (an unclosed client keeps its sockets and
tasks until the garbage collector finds it, and the chaos suite saw them pile up after restarts)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaConnectionError

from tests.platform.kafka_admin import admin_client, create_topics
from ticketflow.lag import lag_report
from ticketflow.topology import partitions_of
from tools.probe import settle
from workers.delivery.barrier import Projection, ProjectionBarrier
from workers.kafka import KafkaAccess
from workers.settings import Settings


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every admin client and consumer a KafkaAccess makes during the test."""
    clients: list[Any] = []
    for kind in ("admin", "consumer"):
        original = getattr(KafkaAccess, kind)

        def making(self: KafkaAccess, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            client = _original(self, *args, **kwargs)
            clients.append(client)
            return client

        monkeypatch.setattr(KafkaAccess, kind, making)
    return clients


async def test_x5_batches_asking_the_barrier_at_once_share_one_admin_client_and_one_consumer(kafka, made):
    topic = f"barrier-{uuid.uuid4().hex[:8]}"
    async with admin_client(kafka) as admin:
        await create_topics(admin, [NewTopic(topic, 3, 1)])
    barrier = ProjectionBarrier(KafkaAccess(kafka), "ticketflow-test-barrier")
    projection = Projection(f"{topic}.group", topic)
    try:
        marks = await asyncio.gather(*(barrier.marks(projection, {f"key-{i}"}) for i in range(6)))
        assert all(m[0].offset == 0 for m in marks)
        assert len(made) == 2, f"one admin client and one consumer, not {len(made)} clients"
    finally:
        await barrier.close()
    assert all(client._closed for client in made)


async def test_x5_a_barrier_that_cannot_reach_the_broker_leaves_no_client_open(made):
    barrier = ProjectionBarrier(KafkaAccess("127.0.0.1:1"), "ticketflow-test-barrier")
    projection = Projection("group", "topic")
    for _attempt in range(2):
        with pytest.raises(KafkaConnectionError):
            await barrier.mark(projection, "key")
    assert made and all(client._closed for client in made), "every client made was closed again"
    await barrier.close()


@pytest.mark.parametrize("tool", ["lag", "partitions", "settle"])
async def test_x5_operator_tools_that_cannot_reach_the_broker_leave_no_client_open(made, tool):
    settings = Settings(bootstrap_servers="127.0.0.1:1")
    calls = {"lag": lambda: lag_report(settings),
             "partitions": lambda: partitions_of(settings.kafka, ["topic"]),
             "settle": lambda: settle(settings.kafka, [("group", "topic")], timeout=1)}
    with pytest.raises(KafkaConnectionError):
        await calls[tool]()
    assert made and all(client._closed for client in made), "every client made was closed again"
