"""`ticketflow topics apply|list`: create the catalogue's missing topics and report drift, never destroy.

Drift (partition count, replication factor, cleanup policy or retention differing from the
catalogue) is reported for an operator to decide: adding partitions remaps keys (breaking
per-conversation order) and shrinking is impossible, so neither is done automatically.
The broker answers CreateTopics per topic (the admin client does not raise): every topic's
answer is checked, and a topic the broker refused is reported as FAILED.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from contracts.topics import CATALOGUE, TopicSpec
from ticketflow.operator_kafka import admin_client
from workers.kafka import KafkaAccess
from workers.settings import Settings

LEADER_WAIT_SECONDS = 30.0


@dataclass
class TopicState:
    """What the broker says about one catalogue topic, and how it differs from the catalogue."""

    name: str
    spec: TopicSpec
    exists: bool = False
    partitions: int = 0
    replication: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self, replication_factor: int) -> str:
        """One line of `ticketflow topics list`."""
        if not self.exists:
            return f"{self.name:50} MISSING  (catalogue: {self.spec.partitions} partitions)"
        verdict = "ok" if not self.problems else "DRIFT: " + "; ".join(self.problems)
        return (f"{self.name:50} present  partitions {self.partitions}/{self.spec.partitions}  "
                f"replication {self.replication}/{replication_factor}  {verdict}")


@dataclass
class ApplyReport:
    """The outcome of `topics apply` (or of `topics apply --check`, which creates nothing)."""

    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    checked_only: bool = False

    @property
    def ok(self) -> bool:
        """True when every catalogue topic exists as the catalogue says."""
        return not (self.drift or self.failed or self.missing)

    def lines(self) -> list[str]:
        """The report, one line per topic, then a summary line."""
        out = [f"created   {name}" for name in self.created]
        out += [f"ok        {name}" for name in self.unchanged]
        out += [f"MISSING   {name}" for name in self.missing]
        out += [f"DRIFT     {d}" for d in self.drift]
        out += [f"FAILED    {f}" for f in self.failed]
        out.append(self.summary())
        return out

    def summary(self) -> str:
        """The counts, in one line."""
        if self.checked_only:
            return f"{len(self.missing)} missing, {len(self.unchanged)} unchanged, {len(self.drift)} drifted"
        return (f"{len(self.created)} created, {len(self.unchanged)} unchanged, {len(self.drift)} drifted, "
                f"{len(self.failed)} failed")

    def record(self, state: TopicState) -> None:
        """File an existing topic under unchanged or drift."""
        if state.problems:
            self.drift.append(f"{state.name}: {'; '.join(state.problems)}")
        else:
            self.unchanged.append(state.name)


async def topic_states(settings: Settings, catalogue: tuple[TopicSpec, ...] = CATALOGUE) -> list[TopicState]:
    """Ask the broker about every catalogue topic: exists?, partitions, replication, drift."""
    async with admin_client(settings.kafka) as admin:
        return await inspect_topics(admin, settings, catalogue)


async def check_topics(settings: Settings, catalogue: tuple[TopicSpec, ...] = CATALOGUE) -> ApplyReport:
    """`topics apply --check`: what apply would find, changing nothing."""
    report = ApplyReport(checked_only=True)
    for state in await topic_states(settings, catalogue):
        if state.exists:
            report.record(state)
        else:
            report.missing.append(state.name)
    return report


async def apply_topics(settings: Settings, catalogue: tuple[TopicSpec, ...] = CATALOGUE) -> ApplyReport:
    """Create the catalogue's missing topics, check the broker's answer for each, report drift of the rest."""
    async with admin_client(settings.kafka) as admin:
        report = ApplyReport()
        states = await inspect_topics(admin, settings, catalogue)
        for state in states:
            if state.exists:
                report.record(state)
        missing = [s.spec for s in states if not s.exists]
        if missing:
            await _create(admin, settings, missing, report)
        return report


async def _create(admin: AIOKafkaAdminClient, settings: Settings, specs: list[TopicSpec], report: ApplyReport) -> None:
    rf = settings.replication_factor
    response = await admin.create_topics([
        NewTopic(settings.topic(spec.name), num_partitions=spec.partitions, replication_factor=rf,
                 topic_configs=spec.configs(rf))
        for spec in specs
    ])
    raced: list[TopicSpec] = []
    by_name = {settings.topic(spec.name): spec for spec in specs}
    for name, code, message in (t[:3] for t in response.topic_errors):
        if code == 0:
            report.created.append(name)
        elif for_code(code) is TopicAlreadyExistsError:  # created by someone else meanwhile: check it
            raced.append(by_name[name])
        else:
            report.failed.append(f"{name}: {for_code(code).__name__}: {message or 'no detail from the broker'}")
    for name in await _without_leaders(admin, report.created):
        report.created.remove(name)
        report.failed.append(f"{name}: created, but some partitions have no leader after {LEADER_WAIT_SECONDS:.0f}s")
    for state in await inspect_topics(admin, settings, tuple(raced)) if raced else []:
        report.record(state)


async def _without_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> list[str]:
    """New topics are usable once every partition has a leader; the names still without one after the wait."""
    if not names:
        return []
    deadline = asyncio.get_running_loop().time() + LEADER_WAIT_SECONDS
    while True:
        described = await admin.describe_topics(names)
        waiting = [t["topic"] for t in described
                   if not (t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"]))]
        if not waiting or asyncio.get_running_loop().time() > deadline:
            return waiting
        await asyncio.sleep(0.2)


async def inspect_topics(admin: AIOKafkaAdminClient, settings: Settings,
                         catalogue: tuple[TopicSpec, ...] = CATALOGUE) -> list[TopicState]:
    """The broker's view of each catalogue topic (in catalogue order), with its drift from the catalogue."""
    existing = set(await admin.list_topics())
    states = {settings.topic(spec.name): TopicState(settings.topic(spec.name), spec) for spec in catalogue}
    for name, state in states.items():
        state.exists = name in existing
    present = [name for name in states if name in existing]
    if present:
        await _describe_into(admin, states, present, settings.replication_factor)
        await _configs_into(admin, states, present, settings.replication_factor)
    return list(states.values())


async def _describe_into(admin: AIOKafkaAdminClient, states: dict[str, TopicState], names: list[str],
                         replication_factor: int) -> None:
    for topic in await admin.describe_topics(names):
        state = states[topic["topic"]]
        if topic["error_code"] != 0:
            state.problems.append(f"the broker cannot describe it: {for_code(topic['error_code']).__name__}")
            continue
        parts = topic["partitions"]
        state.partitions = len(parts)
        state.replication = min((len(p["replicas"]) for p in parts), default=0)
        if state.partitions != state.spec.partitions:
            state.problems.append(f"partitions {state.partitions}, catalogue says {state.spec.partitions}")
        if state.replication != replication_factor:
            state.problems.append(f"replication factor {state.replication}, expected {replication_factor}")


async def _configs_into(admin: AIOKafkaAdminClient, states: dict[str, TopicState], names: list[str],
                        replication_factor: int) -> None:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    for response in responses:
        for code, _msg, _type, name, entries in response.resources:
            state = states[name]
            if code != 0:
                state.problems.append(f"the broker cannot describe its configs: {for_code(code).__name__}")
                continue
            actual = {entry[0]: entry[1] for entry in entries}
            for key, value in state.spec.configs(replication_factor).items():
                if actual.get(key) != value:
                    state.problems.append(f"{key}={actual.get(key)}, catalogue says {value}")


async def delete_topics_under(kafka: KafkaAccess | str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a demo's or a test run's own); refuses an empty prefix."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    async with admin_client(kafka) as admin:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
        return mine
