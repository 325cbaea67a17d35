"""A workaround for an aiokafka client that has lost every broker it knew (aiokafka 0.14.0).

When the first metadata a client gets names no broker (a KRaft node still starting answers so), aiokafka
keeps only its bootstrap connection to ask again. If that connection then closes (the broker goes down
once more), the client has no node left: every metadata refresh logs "Unable to update metadata from []"
and gives up, forever, and its consumers never rejoin their groups. The chaos suite saw a worker
restarted during a broker outage stay so for good with thousands of records waiting.

`install()` makes every client of the process (ours, FastStream's, the admin client's) bootstrap again
from its configured servers in that state, instead of asking nobody. Until that succeeds, the refresh
reports failure as before and aiokafka retries it with its usual backoff."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.errors import KafkaConnectionError

log = logging.getLogger("ticketflow.kafka")

_BOOTSTRAP = ("bootstrap", ConnectionGroup.DEFAULT)


def install() -> None:
    """Patch `AIOKafkaClient._metadata_update` once per process (idempotent)."""
    original = AIOKafkaClient._metadata_update
    if getattr(original, "_ticketflow_recovery", False):
        return

    async def metadata_update(self: AIOKafkaClient, cluster_metadata: Any, topics: Any) -> bool:
        if not cluster_metadata.brokers() and _BOOTSTRAP not in self._conns:
            log.warning("Kafka client %s knows no broker: bootstrapping again from %s",
                        self._client_id, self._bootstrap_servers)
            try:
                await self.bootstrap()
            except KafkaConnectionError as exc:
                log.warning("bootstrapping again failed, will retry: %s", exc)
                return False
        result: bool = await original(self, cluster_metadata, topics)
        return result

    metadata_update._ticketflow_recovery = True  # type: ignore[attr-defined]
    AIOKafkaClient._metadata_update = metadata_update
