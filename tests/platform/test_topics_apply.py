"""`ticketflow topics apply` against the real broker: creates the catalogue once, is idempotent, and
reports drift without destroying or changing anything (every run under a fresh prefix of its own)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import NewTopic

from contracts.topics import ACCOUNTS, CATALOGUE, REJECTIONS, TICKET_EVENTS
from tests.platform.kafka_admin import admin_client, create_topics, delete_topics_with_prefix, describe
from tests.support.services import REPO
from ticketflow.config import Settings
from ticketflow.provisioning import apply_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
async def cleanup(kafka: str) -> AsyncIterator[list[str]]:
    """Collects the prefixes a test provisioned, and deletes exactly those topics afterwards."""
    prefixes: list[str] = []
    yield prefixes
    for prefix in prefixes:
        await delete_topics_with_prefix(kafka, prefix)


def _fresh(run_prefix: str, what: str) -> str:
    return f"{run_prefix}{what}-{uuid.uuid4().hex[:8]}."


async def test_apply_creates_the_catalogue_once_and_then_reports_it_unchanged(
        settings: Settings, run_prefix: str, cleanup: list[str]) -> None:
    prefix = _fresh(run_prefix, "apply")
    cleanup.append(prefix)
    fresh = dataclasses.replace(settings, topic_prefix=prefix)
    names = [fresh.topic(spec.name) for spec in CATALOGUE]
    assert len(names) == 9

    first = await apply_topics(fresh)
    assert sorted(first.created) == sorted(names)
    assert (first.unchanged, first.drift) == ([], [])

    second = await apply_topics(fresh)
    assert (second.created, second.drift) == ([], [])
    assert sorted(second.unchanged) == sorted(names)
    assert second.lines()[-1] == "0 created, 9 unchanged, 0 drifted"

    async with admin_client(fresh.bootstrap_servers) as admin:
        described = await describe(admin, names)
    for spec in CATALOGUE:
        topic = described[fresh.topic(spec.name)]
        assert topic["partitions"] == spec.partitions, spec.name
        assert topic["replicas"] == fresh.replication_factor, spec.name
        assert topic["config"]["cleanup.policy"] == spec.cleanup_policy, spec.name
        for key, value in spec.configs(fresh.replication_factor).items():
            assert topic["config"][key] == value, (spec.name, key)
    assert described[fresh.topic(ACCOUNTS)]["config"]["cleanup.policy"] == "compact"
    assert described[fresh.topic(TICKET_EVENTS)]["partitions"] == 6


async def test_apply_reports_partition_drift_and_neither_deletes_nor_changes_the_drifted_topic(
        settings: Settings, run_prefix: str, cleanup: list[str]) -> None:
    prefix = _fresh(run_prefix, "drift")
    cleanup.append(prefix)
    fresh = dataclasses.replace(settings, topic_prefix=prefix)
    drifted = fresh.topic(REJECTIONS)  # the catalogue says 3 partitions
    spec = next(s for s in CATALOGUE if s.name == REJECTIONS)
    async with admin_client(fresh.bootstrap_servers) as admin:
        await create_topics(admin, [NewTopic(drifted, num_partitions=2, replication_factor=1,
                                             topic_configs=spec.configs(1))])

    report = await apply_topics(fresh)

    others = [fresh.topic(s.name) for s in CATALOGUE if s.name != REJECTIONS]
    assert sorted(report.created) == sorted(others)
    assert report.unchanged == []
    assert len(report.drift) == 1
    assert report.drift[0].startswith(f"{drifted}: ")
    assert "partitions 2, catalogue says 3" in report.drift[0]
    assert any(line.startswith("DRIFT") and drifted in line and "partitions" in line for line in report.lines())

    async with admin_client(fresh.bootstrap_servers) as admin:
        assert drifted in await admin.list_topics()
        after = await describe(admin, [drifted, *others])
    assert after[drifted]["partitions"] == 2  # still the operator's to fix, not silently changed
    for s in CATALOGUE:
        if s.name != REJECTIONS:
            assert after[fresh.topic(s.name)]["partitions"] == s.partitions

    again = await apply_topics(fresh)
    assert again.created == [] and len(again.drift) == 1 and sorted(again.unchanged) == sorted(others)


async def test_cli_topics_apply_is_idempotent(kafka: str, run_prefix: str, cleanup: list[str]) -> None:
    prefix = _fresh(run_prefix, "cli")
    cleanup.append(prefix)
    env = {**os.environ, "TICKETFLOW_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": kafka}
    cli = [str(REPO / ".venv/bin/ticketflow"), "topics", "apply"]

    first = subprocess.run(cli, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "9 created, 0 unchanged, 0 drifted" in first.stdout
    assert f"created   {prefix}{ACCOUNTS}" in first.stdout

    second = subprocess.run(cli, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "0 created" in second.stdout
    assert "0 created, 9 unchanged, 0 drifted" in second.stdout
    assert "DRIFT" not in second.stdout
