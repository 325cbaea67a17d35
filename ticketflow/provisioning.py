"""`ticketflow topics apply`: create the catalogue's missing topics and report drift, never destroy.

Drift (partition count, replication factor, cleanup policy or retention differing from the
catalogue) is reported for an operator to decide: adding partitions remaps keys (breaking
per-conversation order) and shrinking is impossible, so neither is done automatically.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from contracts.topics import CATALOGUE, TopicSpec
from ticketflow.config import Settings


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"created   {name}" for name in self.created]
        out += [f"ok        {name}" for name in self.unchanged]
        out += [f"DRIFT     {d}" for d in self.drift]
        out.append(f"{len(self.created)} created, {len(self.unchanged)} unchanged, {len(self.drift)} drifted")
        return out


async def apply_topics(settings: Settings, catalogue: tuple[TopicSpec, ...] = CATALOGUE) -> ApplyReport:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="ticketflow-topics")
    await admin.start()
    try:
        report = ApplyReport()
        existing = set(await admin.list_topics())
        wanted = {settings.topic(spec.name): spec for spec in catalogue}
        missing = [name for name in wanted if name not in existing]
        if missing:
            await admin.create_topics([
                NewTopic(name, num_partitions=wanted[name].partitions,
                         replication_factor=settings.replication_factor,
                         topic_configs=wanted[name].configs(settings.replication_factor))
                for name in missing
            ])
            report.created.extend(missing)
            await _wait_for_leaders(admin, missing)
        present = [name for name in wanted if name in existing]
        if present:
            for name, problems in (await _drift(admin, present, wanted, settings.replication_factor)).items():
                if problems:
                    report.drift.append(f"{name}: {'; '.join(problems)}")
                else:
                    report.unchanged.append(name)
        return report
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], timeout: float = 30.0) -> None:
    """New topics are usable once every partition has a leader; clients started before see errors."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(names)
        if all(t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
               for t in described):
            return
        await asyncio.sleep(0.2)


async def _drift(admin: AIOKafkaAdminClient, names: list[str], wanted: dict[str, TopicSpec],
                 replication_factor: int) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {name: [] for name in names}
    for topic in await admin.describe_topics(names):
        name = topic["topic"]
        parts = topic["partitions"]
        spec = wanted[name]
        if len(parts) != spec.partitions:
            problems[name].append(f"partitions {len(parts)}, catalogue says {spec.partitions}")
        rf = min((len(p["replicas"]) for p in parts), default=0)
        if rf != replication_factor:
            problems[name].append(f"replication factor {rf}, expected {replication_factor}")
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    for response in responses:
        for _code, _msg, _type, name, entries in response.resources:
            actual = {entry[0]: entry[1] for entry in entries}
            for key, value in wanted[name].configs(replication_factor).items():
                if actual.get(key) != value:
                    problems[name].append(f"{key}={actual.get(key)}, catalogue says {value}")
    return problems


async def delete_topics_under(bootstrap_servers: str, prefix: str) -> list[str]:
    """Delete every topic whose name starts with `prefix` (a demo's or a test run's own); refuses an empty prefix."""
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="ticketflow-topics")
    await admin.start()
    try:
        mine = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if mine:
            await admin.delete_topics(mine)
        return mine
    finally:
        await admin.close()
