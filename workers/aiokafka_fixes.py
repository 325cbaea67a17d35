"""Workarounds for two aiokafka 0.14.0 bugs the chaos suite and the tests met, installed once per
process by `workers.kafka` for every client (ours, FastStream's, the admin client's).

1. A client that has lost every broker it knew. When the first metadata a client gets names no broker (a
KRaft node still starting answers so), aiokafka keeps only its bootstrap connection to ask again. If
that connection then closes (the broker goes down once more), the client has no node left: every
metadata refresh logs "Unable to update metadata from []" and gives up, forever, and its consumers never
rejoin their groups. The chaos suite saw a worker restarted during a broker outage stay so for good with
thousands of records waiting.

The fix: in that state the client bootstraps again from its configured servers instead of asking
nobody. Until that succeeds, the refresh reports failure as before and aiokafka retries it.

2. A consumer that cannot stop. `Fetcher.close` cancels its pending fetch tasks and awaits them, but a
fetch that failed (a request timed out) waits out its retry backoff outside the task's own
`CancelledError` guard, so `consumer.stop()` raised `CancelledError` to its caller: a worker's
shutdown, a probe's, a CLI command's. The fix: close swallows the cancellation of its own tasks, never
one aimed at the caller."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.errors import KafkaConnectionError

log = logging.getLogger("ticketflow.kafka")

_BOOTSTRAP = ("bootstrap", ConnectionGroup.DEFAULT)


def install() -> None:
    """Install both fixes (idempotent)."""
    _rebootstrap_when_no_broker_is_known()
    _close_fetcher_quietly()


def _rebootstrap_when_no_broker_is_known() -> None:
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


def _close_fetcher_quietly() -> None:
    if getattr(Fetcher.close, "_ticketflow_fix", False):
        return

    async def close(self: Fetcher) -> None:
        self._closed = True
        self._fetch_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._fetch_task
        for waiter in self._fetch_waiters:
            self._notify(waiter)
        for task in self._pending_tasks:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # the caller itself is being cancelled: let it be

    close._ticketflow_fix = True  # type: ignore[attr-defined]
    Fetcher.close = close
