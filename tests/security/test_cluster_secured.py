"""`deploy/kafka/kafka.sh secure-cluster-start`: the three-node cluster secured like the single node (the
brokers replicate over SASL_SSL as `broker`, the controllers take only the brokers' certificate). Topics at
replication factor 3, the generated ACLs applied as admin, then a worker's acks=all write reaches all three
replicas while the agents' forged internal command is refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from contracts.topics import CONVERSATION_EVENTS, TICKET_COMMANDS_INTERNAL
from tests.security.attempts import join_group, produce_each
from tests.security.broker import SecureKafka, running, three_nodes
from tests.security.exposure import Exposure
from ticketflow.acls import apply_acls
from ticketflow.operator_kafka import admin_client
from ticketflow.provisioning import apply_topics
from workers.settings import Settings

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, exposure: Exposure) -> Iterator[SecureKafka]:
    with running(three_nodes(tmp_path_factory.mktemp("secure-cluster"), exposure), "secure-cluster-start",
                 "cluster-stop") as kafka:
        yield kafka


@pytest.fixture(scope="module")
async def admin(cluster: SecureKafka) -> AsyncIterator[Settings]:
    settings = cluster.settings("admin", topic_prefix=f"c-{uuid.uuid4().hex[:6]}.", replication_factor=3)
    assert (await apply_topics(settings)).ok
    report = await apply_acls(settings)
    assert report.ok, report.lines()
    yield settings


async def test_a_worker_writes_to_all_three_replicas_and_a_client_reads_under_its_group_prefix(cluster, admin):
    events = admin.topic(CONVERSATION_EVENTS)
    async with admin_client(admin.kafka) as client:
        [described] = await client.describe_topics([events])
    assert all(len(p["replicas"]) == 3 for p in described["partitions"])
    assert await produce_each(cluster.access("inbound"), [events]) == {events: None}  # acks=all, min ISR 2
    assert await join_group(cluster.access("subscriber"), admin.topic("subscriber.dashboards"), events) is None


async def test_the_agents_forged_internal_command_is_refused_by_the_cluster(cluster, admin):
    internal = admin.topic(TICKET_COMMANDS_INTERNAL)
    assert await produce_each(cluster.access("agents"), [internal]) == {internal: TopicAuthorizationFailedError}

