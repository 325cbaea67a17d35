"""`ticketflow skip`: move a consumer group past the one record it is stuck on, without losing it (X4).

The record is first copied to the dead-letter topic (reason `skipped_by_operator`, the same dlq_*
headers a worker writes), then the group's offset for that partition is committed to the next
record. Only the record at the group's current position can be skipped, so a typo never skips more
than one record, and only while the group has no active consumers (the broker refuses commits from
outside a running group, and a running consumer would overwrite the offset anyway).
"""

from __future__ import annotations

from typing import Any

from aiokafka import TopicPartition
from aiokafka import errors as kafka_errors
from aiokafka.structs import OffsetAndMetadata

from contracts.topics import DEADLETTER
from ticketflow.errors import OperatorError
from ticketflow.operator_kafka import (
    admin_client,
    fetch_record,
    reader,
    require_partition,
    retry_while_coordinator_loads,
    writer,
)
from workers.delivery.deadletter import build_dead_letter, send_dead_letter
from workers.settings import Settings

REASON = "skipped_by_operator"
ERROR_CLASS = "SkippedByOperator"

_GROUP_ACTIVE = (kafka_errors.CommitFailedError, kafka_errors.UnknownMemberIdError,
                 kafka_errors.IllegalGenerationError, kafka_errors.RebalanceInProgressError)


async def skip_record(settings: Settings, group: str, topic: str, partition: int, offset: int,
                      note: str | None = None) -> str:
    """Dead-letter topic[partition]@offset for `group`, then commit offset+1 for it; the line to print."""
    tp = TopicPartition(topic, partition)
    position = await _stopped_group_position(settings, group, tp)
    if offset != position:
        raise OperatorError(f"refusing to skip {topic}[{partition}]@{offset}: group {group} is at offset {position} "
                            f"on that partition, and only the record a group is stuck on (its current offset, "
                            f"{position}) can be skipped")
    record = await fetch_record(settings.kafka, topic, partition, offset)
    detail = note or f"skipped with `ticketflow skip`; group {group} resumes at offset {offset + 1}"
    letter = build_dead_letter(record, group, ERROR_CLASS, REASON, detail)
    async with writer(settings.kafka) as producer:
        await send_dead_letter(producer, settings.topic(DEADLETTER), record, letter)
    await _commit(settings, group, tp, offset + 1)
    return (f"skipped {topic}[{partition}]@{offset} ({_describe(record)}) for group {group}: copied to "
            f"{settings.topic(DEADLETTER)} with reason {REASON}; the group resumes at offset {offset + 1}")


async def _stopped_group_position(settings: Settings, group: str, tp: TopicPartition) -> int:
    """The offset `group` will read next on `tp`; OperatorError if the group has active consumers."""
    async with admin_client(settings.kafka) as admin:
        await require_partition(admin, tp.topic, tp.partition)
        members, state = await retry_while_coordinator_loads(lambda: _members(admin, group))
        if members:
            raise OperatorError(f"group {group} has {members} active consumer(s) (state {state}): stop them (the "
                                f"worker processes of that group) first, then run skip again")
        committed = await retry_while_coordinator_loads(
            lambda: admin.list_consumer_group_offsets(group, partitions=[tp]))
    meta = committed.get(tp)
    if meta is not None and meta.offset >= 0:
        return int(meta.offset)
    async with reader(settings.kafka) as consumer:  # no commit yet: workers start at the earliest
        return int((await consumer.beginning_offsets([tp]))[tp])


async def _members(admin: Any, group: str) -> tuple[int, str]:
    """(number of active members, state) of `group`; (0, 'Dead') for a group the broker does not know."""
    for response in await admin.describe_consumer_groups([group]):
        for described in response.groups:
            error_code, group_id, state, members = described[0], described[1], described[2], described[5]
            if group_id == group:
                if error_code:
                    raise kafka_errors.for_code(error_code)(f"describing group {group}")
                return len(members), state
    return 0, "Dead"


async def _commit(settings: Settings, group: str, tp: TopicPartition, offset: int) -> None:
    async with reader(settings.kafka, group_id=group) as consumer:
        consumer.assign([tp])
        try:
            await retry_while_coordinator_loads(
                lambda: consumer.commit({tp: OffsetAndMetadata(offset, "ticketflow skip")}))
        except _GROUP_ACTIVE as exc:
            raise OperatorError(
                f"the broker refused to commit offset {offset} for group {group} ({type(exc).__name__}): the group "
                f"became active; stop its consumers (the worker processes of that group) and run skip again "
                f"(the record is already on the dead-letter topic; a second run copies it once more)") from None


def _describe(record: Any) -> str:
    key = record.key.decode(errors="replace") if record.key is not None else None
    return f"key={key!r}, {len(record.value or b'')} bytes"
