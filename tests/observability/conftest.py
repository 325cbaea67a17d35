"""Fixtures for the observability tests: the platform tests' fresh database on each backend, and a
topic of their own on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.platform.conftest import db_url, engine  # noqa: F401  (fixtures shared with the platform tests)


@pytest.fixture
async def topic(kafka: str, run_prefix: str) -> AsyncIterator[str]:
    """A new topic with two partitions, deleted afterwards."""
    name = f"{run_prefix}obs-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()
