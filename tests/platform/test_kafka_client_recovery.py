"""A Kafka client that has lost every broker it knew finds the cluster again from its bootstrap servers.

Found by the chaos suite: a worker restarted during a broker outage bootstrapped from a broker that was
still starting and named no broker in its metadata, so aiokafka kept only the bootstrap connection; when
that connection closed (the broker went down again), the client had no node left to ask and logged
"Unable to update metadata from []" for good: its consumers never rejoined, and the worker's input
topics stopped with thousands of records waiting (aiokafka 0.14.0; kafka-python had the same bug, #1494).
`workers.kafka` makes every client re-bootstrap in that state (see `workers/kafka_recovery.py`)."""

from __future__ import annotations

import pytest
from aiokafka.client import AIOKafkaClient, ConnectionGroup

import workers.kafka  # noqa: F401  (installs the recovery for every aiokafka client of the process)

pytestmark = pytest.mark.kafka


async def test_x5_a_client_that_knows_no_broker_and_has_no_bootstrap_connection_bootstraps_again(kafka: str) -> None:
    client = AIOKafkaClient(bootstrap_servers=kafka)
    await client.bootstrap()
    try:
        # The state the worker reached: metadata without brokers, the bootstrap connection gone.
        client.cluster._brokers = {}
        conn = client._conns.pop(("bootstrap", ConnectionGroup.DEFAULT), None)
        if conn is not None:
            conn.close()
        assert client.cluster.brokers() == set()

        assert await client._metadata_update(client.cluster, []) is True
        assert client.cluster.brokers(), "the client knows the cluster's brokers again"
    finally:
        await client.close()
