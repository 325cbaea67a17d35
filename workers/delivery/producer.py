"""The one way Ticketflow produces to Kafka: acks from all in-sync replicas, idempotent, ordered."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from contracts.topics import DEADLETTER_MAX_BYTES

MAX_REQUEST_BYTES = DEADLETTER_MAX_BYTES + 64 * 1024
"""Large enough for any dead letter; the broker still refuses records over a topic's own limit."""


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30_000,
        max_request_size=MAX_REQUEST_BYTES,
    )
