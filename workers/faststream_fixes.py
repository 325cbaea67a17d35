"""A FastStream 0.7 behaviour that cost every worker latency, changed once per process by
`workers.broker` (ADR 12 says why we patch in process, and how).

An idle batch subscriber slept after every empty poll. FastStream's Kafka batch subscriber asks
`consumer.getmany(timeout_ms=batch_timeout_ms)`, which already waits up to that long for records, and
when nothing came it then sleeps `batch_timeout_ms` (200 ms by default) more before polling again. A
record that reaches an idle input during that sleep waits for it: the benchmark saw inputs with a
record every now and then (commands, `ticket.closed`, the sync commands) add about 100 ms on average
to each hop of the close cascade (ticket.closed -> sync -> close_conversation -> inbound).

The fix: after an empty poll that waited its timeout, poll again at once. Only a poll that came back
empty early (aiokafka returns at once while the consumer has no partitions) waits out the rest of its
timeout, so an idle loop still wakes at most once per `batch_timeout_ms`.
"""

from __future__ import annotations

from itertools import chain
from time import monotonic
from typing import Any

import anyio
from faststream.kafka.subscriber.usecase import BatchSubscriber


async def _get_msg(self: Any, consumer: Any) -> tuple[Any, ...]:
    assert consumer, "You should setup subscriber at first."
    started = monotonic()
    messages = await consumer.getmany(timeout_ms=self.batch_timeout_ms, max_records=self.max_records)
    if not messages:
        left = self.batch_timeout_ms / 1000 - (monotonic() - started)
        if left > 0:
            await anyio.sleep(left)
        return ()
    return tuple(chain(*messages.values()))


def install() -> None:
    """Idempotent."""
    if getattr(BatchSubscriber.get_msg, "_ticketflow", False):
        return
    _get_msg._ticketflow = True  # type: ignore[attr-defined]
    BatchSubscriber.get_msg = _get_msg  # type: ignore[method-assign]
