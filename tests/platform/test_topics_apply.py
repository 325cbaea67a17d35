"""`ticketflow topics apply` against the real broker: creates the catalogue once, is idempotent, reports
drift without destroying or changing anything, checks the broker's answer for every topic it creates,
and exits non-zero on a refused topic or on drift; `topics apply --check` changes nothing and `topics
list` asks the broker (every run under a fresh prefix of its own)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import NewTopic

from contracts.topics import (
    ACCOUNTS,
    CATALOGUE,
    INBOUND_MESSAGES,
    REJECTIONS,
    TICKET_EVENTS,
)
from tests.platform.kafka_admin import (
    admin_client,
    create_topics,
    delete_topics_with_prefix,
    describe,
)
from tests.platform.test_operator_tools import one_line, run_cli
from tests.support.services import REPO
from ticketflow.provisioning import apply_topics
from workers.settings import Settings

pytestmark = pytest.mark.kafka

N = len(CATALOGUE)
"""Topics in the catalogue (inbound, commands public and internal, events, rejections, outbound, accounts, dead letters)."""


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
    fresh = settings.model_copy(update=dict(topic_prefix=prefix))
    names = [fresh.topic(spec.name) for spec in CATALOGUE]
    assert len(names) == len(CATALOGUE) == 11

    first = await apply_topics(fresh)
    assert sorted(first.created) == sorted(names)
    assert (first.unchanged, first.drift) == ([], [])

    second = await apply_topics(fresh)
    assert (second.created, second.drift) == ([], [])
    assert sorted(second.unchanged) == sorted(names)
    assert second.lines()[-1] == f"0 created, {N} unchanged, 0 drifted, 0 failed"
    assert second.ok

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
    fresh = settings.model_copy(update=dict(topic_prefix=prefix))
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
    assert not again.ok


async def test_cli_topics_apply_is_idempotent(kafka: str, run_prefix: str, cleanup: list[str]) -> None:
    prefix = _fresh(run_prefix, "cli")
    cleanup.append(prefix)
    env = {**os.environ, "TICKETFLOW_TOPIC_PREFIX": prefix, "KAFKA_BOOTSTRAP_SERVERS": kafka}
    cli = [str(REPO / ".venv/bin/ticketflow"), "topics", "apply"]

    first = subprocess.run(cli, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert f"{N} created, 0 unchanged, 0 drifted, 0 failed" in first.stdout
    assert f"created   {prefix}{ACCOUNTS}" in first.stdout

    second = subprocess.run(cli, env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "0 created" in second.stdout
    assert f"0 created, {N} unchanged, 0 drifted, 0 failed" in second.stdout
    assert "DRIFT" not in second.stdout


def _env(kafka: str, prefix: str, **extra: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": kafka, "TICKETFLOW_TOPIC_PREFIX": prefix, "TICKETFLOW_REPLICATION_FACTOR": "1",
            **extra}


async def _drifted_rejections_topic(kafka: str, prefix: str) -> str:
    """The rejections topic with 2 partitions where the catalogue says 3."""
    name = f"{prefix}{REJECTIONS}"
    spec = next(s for s in CATALOGUE if s.name == REJECTIONS)
    async with admin_client(kafka) as admin:
        await create_topics(admin, [NewTopic(name, num_partitions=2, replication_factor=1,
                                             topic_configs=spec.configs(1))])
    return name


async def _topics_under(kafka: str, prefix: str) -> list[str]:
    async with admin_client(kafka) as admin:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix))


async def test_cli_topics_apply_with_replication_factor_3_on_one_broker_fails_and_names_every_topic(
        kafka: str, run_prefix: str, cleanup: list[str]) -> None:
    prefix = _fresh(run_prefix, "rf3")
    cleanup.append(prefix)

    out = await run_cli(_env(kafka, prefix, TICKETFLOW_REPLICATION_FACTOR="3"), "topics", "apply")

    assert out.returncode == 1
    failed = [line for line in out.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == N
    for spec in CATALOGUE:
        assert any(line.startswith(f"FAILED    {prefix}{spec.name}: InvalidReplicationFactorError: ")
                   for line in failed), spec.name
    assert f"0 created, 0 unchanged, 0 drifted, {N} failed" in out.stdout
    assert one_line(out.stderr).startswith(f"ticketflow: topics apply: 0 created, 0 unchanged, 0 drifted, {N} failed")
    assert await _topics_under(kafka, prefix) == []


async def test_cli_topics_apply_exits_non_zero_on_drift(kafka: str, run_prefix: str, cleanup: list[str]) -> None:
    prefix = _fresh(run_prefix, "cli-drift")
    cleanup.append(prefix)
    drifted = await _drifted_rejections_topic(kafka, prefix)

    out = await run_cli(_env(kafka, prefix), "topics", "apply")

    assert out.returncode == 1
    assert f"DRIFT     {drifted}: partitions 2, catalogue says 3" in out.stdout
    assert f"{N - 1} created, 0 unchanged, 1 drifted, 0 failed" in out.stdout
    assert "1 drifted" in one_line(out.stderr)


async def test_cli_topics_apply_check_changes_nothing_and_exits_non_zero_on_missing_topics(
        kafka: str, run_prefix: str, cleanup: list[str]) -> None:
    prefix = _fresh(run_prefix, "check-missing")
    cleanup.append(prefix)

    out = await run_cli(_env(kafka, prefix), "topics", "apply", "--check")

    assert out.returncode == 1
    assert [line for line in out.stdout.splitlines() if line.startswith("MISSING")] == [
        f"MISSING   {prefix}{spec.name}" for spec in CATALOGUE]
    assert f"{N} missing, 0 unchanged, 0 drifted" in out.stdout
    assert await _topics_under(kafka, prefix) == []


async def test_cli_topics_apply_check_exits_non_zero_on_a_drifted_topic_and_zero_on_a_clean_catalogue(
        kafka: str, run_prefix: str, cleanup: list[str]) -> None:
    clean, drifty = _fresh(run_prefix, "check-clean"), _fresh(run_prefix, "check-drift")
    cleanup += [clean, drifty]
    drifted = await _drifted_rejections_topic(kafka, drifty)
    for prefix in (clean, drifty):
        await apply_topics(Settings(bootstrap_servers=kafka, topic_prefix=prefix))

    ok = await run_cli(_env(kafka, clean), "topics", "apply", "--check")
    bad = await run_cli(_env(kafka, drifty), "topics", "apply", "--check")

    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert f"0 missing, {N} unchanged, 0 drifted" in ok.stdout and ok.stderr == ""
    assert bad.returncode == 1
    assert f"DRIFT     {drifted}: partitions 2, catalogue says 3" in bad.stdout
    assert f"0 missing, {N - 1} unchanged, 1 drifted" in bad.stdout
    assert "topics apply --check" in one_line(bad.stderr)
    async with admin_client(kafka) as admin:
        assert (await describe(admin, [drifted]))[drifted]["partitions"] == 2  # --check changed nothing


async def test_cli_topics_list_asks_the_broker(kafka: str, run_prefix: str, cleanup: list[str]) -> None:
    prefix = _fresh(run_prefix, "list")
    cleanup.append(prefix)
    drifted = await _drifted_rejections_topic(kafka, prefix)
    inbound = next(s for s in CATALOGUE if s.name == INBOUND_MESSAGES)
    await apply_topics(Settings(bootstrap_servers=kafka, topic_prefix=prefix), (inbound,))

    out = await run_cli(_env(kafka, prefix), "topics", "list")

    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines()}
    assert set(lines) == {f"{prefix}{spec.name}" for spec in CATALOGUE}
    assert "present  partitions 2/3  replication 1/1  DRIFT: partitions 2, catalogue says 3" in lines[drifted]
    assert "present  partitions 6/6  replication 1/1  ok" in lines[f"{prefix}{INBOUND_MESSAGES}"]
    assert "MISSING  (catalogue: 6 partitions)" in lines[f"{prefix}{TICKET_EVENTS}"]
