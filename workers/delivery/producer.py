"""The one way Ticketflow produces to Kafka: acks from all in-sync replicas, idempotent, ordered."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer


def make_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30_000,
    )
