"""Small helpers for the platform tests: creating, describing and deleting topics with the real admin API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

WAIT_SECONDS = 60.0


@asynccontextmanager
async def admin_client(bootstrap: str, **kwargs: Any) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="ticketflow-platform-tests", **kwargs)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(admin: AIOKafkaAdminClient, topics: list[NewTopic]) -> None:
    """Create topics and fail loudly on any per-topic error (the admin client only returns the codes)."""
    response = await admin.create_topics(topics)
    errors = [(t[0], t[1], t[2] if len(t) > 2 else None) for t in response.topic_errors if t[1] != 0]
    assert not errors, f"create_topics failed: {errors}"
    await wait_topics_visible(admin, [t.name for t in topics])


async def wait_topics_visible(admin: AIOKafkaAdminClient, names: list[str], timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while True:
        described = await admin.describe_topics(names)
        if all(d["error_code"] == 0 and d["partitions"] for d in described):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"topics not visible after {timeout}s: {described}")
        await asyncio.sleep(0.2)


async def describe(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, dict[str, Any]]:
    """name -> {"partitions": n, "replicas": min replica count, "config": {key: value}}."""
    out: dict[str, dict[str, Any]] = {}
    for topic in await admin.describe_topics(names):
        assert topic["error_code"] == 0, topic
        parts = topic["partitions"]
        out[topic["topic"]] = {"partitions": len(parts),
                               "replicas": min((len(p["replicas"]) for p in parts), default=0),
                               "config": {}}
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    for response in responses:
        for _code, _msg, _type, name, entries in response.resources:
            out[name]["config"] = {entry[0]: entry[1] for entry in entries}
    return out


async def delete_topics_with_prefix(bootstrap: str, prefix: str) -> None:
    """Clean up: delete only topics this test created (every one of them lives under `prefix`)."""
    assert prefix and prefix.startswith("test-"), prefix
    async with admin_client(bootstrap) as admin:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
