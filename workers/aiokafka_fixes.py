"""Workarounds for three aiokafka 0.14.0 bugs, and one behaviour changed, the chaos suite and the tests met, installed once per
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
one aimed at the caller.

3. An idempotent producer that never recovers from a broken sequence. When a broker restarts with a
batch in flight, the retried batch can be refused with OUT_OF_ORDER_SEQUENCE_NUMBER (or the broker may
have forgotten the producer: UNKNOWN_PRODUCER_ID). aiokafka fails that batch and goes on numbering the
partition's batches from where it was, so every later batch to that partition is refused the same way,
for as long as the process lives: the chaos suite saw a worker's relay park 13 events so. The Java
client starts a new idempotent session in that case (KIP-360); the fix does the same for a
non-transactional producer: it forgets its producer id and sequence numbers, and the sender asks the
broker for a new id before its next batch. The failed records are the caller's to send again
(`workers.delivery.errors` counts these errors as transient).

4. A static member that stops cleanly leaves its group. aiokafka, like the Java client before KIP-1092,
never sends LeaveGroup for a consumer with a `group_instance_id`, so the partitions of a replica stopped
for good (scaled down, replaced by a rolling update under a new pod name) would stay with nobody until
its session timed out. Ticketflow uses static membership for one case: a replica that crashed comes back
under the same name and takes its partitions back at once (ADR 13). A clean stop leaves, as a dynamic
member does, so the others take over at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka.client import AIOKafkaClient, ConnectionGroup
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaConnectionError, KafkaError, OutOfOrderSequenceNumber, UnknownProducerId
from aiokafka.producer.sender import SendProduceReqHandler
from aiokafka.producer.transaction_manager import NO_PRODUCER_EPOCH, NO_PRODUCER_ID, PidAndEpoch
from aiokafka.protocol.group import LeaveGroupRequest
from aiokafka.util import create_future

log = logging.getLogger("ticketflow.kafka")

_BOOTSTRAP = ("bootstrap", ConnectionGroup.DEFAULT)


def install() -> None:
    """Install all four (idempotent)."""
    _rebootstrap_when_no_broker_is_known()
    _close_fetcher_quietly()
    _new_producer_session_after_a_broken_sequence()
    _static_members_leave_when_they_stop()


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


SESSION_BROKEN = (OutOfOrderSequenceNumber, UnknownProducerId)
"""Broker answers that mean: this idempotent producer session can send no more to that partition."""


def _new_producer_session_after_a_broken_sequence() -> None:
    original = SendProduceReqHandler.handle_response
    if getattr(original, "_ticketflow_fix", False):
        return

    def handle_response(self: SendProduceReqHandler, response: Any) -> Any:
        result = original(self, response)
        txn = self._sender._txn_manager
        if txn is None or txn.transactional_id is not None or not txn.has_pid():
            return result
        for batch in self._batches.values():
            future = batch.future
            if future.done() and not future.cancelled() and isinstance(future.exception(), SESSION_BROKEN):
                log.warning("Kafka producer %s: the broker refused its sequence (%s); starting a new "
                            "idempotent session", txn.producer_id, type(future.exception()).__name__)
                txn._pid_and_epoch = PidAndEpoch(NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
                txn._pid_waiter = create_future()
                txn._sequence_numbers.clear()
                break
        return result

    handle_response._ticketflow_fix = True  # type: ignore[attr-defined]
    SendProduceReqHandler.handle_response = handle_response


def _static_members_leave_when_they_stop() -> None:
    original = GroupCoordinator._maybe_leave_group
    if getattr(original, "_ticketflow_fix", False):
        return

    async def maybe_leave_group(self: GroupCoordinator) -> None:
        if self.generation > 0 and self._group_instance_id is not None:
            # one attempt, as aiokafka makes for a dynamic member; the session timeout covers a failure
            try:
                await self._send_req(LeaveGroupRequest(self.group_id, self.member_id))
            except KafkaError as err:
                log.warning("static member %s could not leave group %s: %s", self._group_instance_id,
                            self.group_id, err)
            else:
                log.info("static member %s left group %s", self._group_instance_id, self.group_id)
        await original(self)

    maybe_leave_group._ticketflow_fix = True  # type: ignore[attr-defined]
    GroupCoordinator._maybe_leave_group = maybe_leave_group
