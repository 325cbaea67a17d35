"""X4/X5: how the delivery core reads raw records and classifies failures, as pure functions.

Transient failures (database or broker down, restarting, failing over) are retried and never
dead-lettered; bad input is dead-lettered with a reason that names what is wrong; a dead letter
always fits on the dead-letter topic."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiokafka import errors as kafka_errors
from pydantic import TypeAdapter
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from contracts.inbound import InboundMessage
from contracts.topics import DEADLETTER_MAX_BYTES
from workers.delivery.deadletter import FIT_BYTES, build_dead_letter
from workers.delivery.errors import BadMessage, is_transient
from workers.delivery.parsing import MAX_JSON_DEPTH, envelope_of, parse


@dataclass
class Record:
    value: bytes | None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    key: bytes | None = b"k"
    topic: str = "t.inbound"
    partition: int = 2
    offset: int = 41


def _wrapped(orig: BaseException) -> DBAPIError:
    """How SQLAlchemy hands a driver error over: a plain DBAPIError around it."""
    return DBAPIError("SELECT 1", {}, orig)


@pytest.mark.parametrize("driver_error", [
    asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    asyncpg.exceptions.SerializationError("could not serialize access"),
    asyncpg.exceptions.InvalidCatalogNameError('database "ticketflow" does not exist'),
    ConnectionRefusedError(111, "Connection refused"),
])
def test_x5_database_restarts_and_outages_are_transient_through_the_wrapper(driver_error):
    assert is_transient(_wrapped(driver_error))


@pytest.mark.parametrize("error", [
    kafka_errors.KafkaTimeoutError(),
    kafka_errors.KafkaConnectionError("Unable to bootstrap"),
    kafka_errors.NotLeaderForPartitionError(),
    kafka_errors.LeaderNotAvailableError(),
    kafka_errors.NotEnoughReplicasError(),
    kafka_errors.RequestTimedOutError(),
    kafka_errors.NodeNotReadyError(),
])
def test_x5_broker_failover_errors_are_transient(error):
    assert is_transient(error)


@pytest.mark.parametrize("error", [
    _wrapped(asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00")),
    _wrapped(asyncpg.exceptions.StringDataRightTruncationError("value too long for type character varying(64)")),
    OperationalError("INSERT", {}, Exception("no such table: tickets")),
    kafka_errors.MessageSizeTooLargeError(),
    kafka_errors.TopicAuthorizationFailedError(),
    ValueError("a bug"),
])
def test_x4_permanent_errors_are_not_transient(error):
    assert not is_transient(error)


def test_x5_sqlite_busy_is_transient():
    assert is_transient(OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked")))


def test_x5_a_unique_violation_is_a_conflict_not_transient():
    assert not is_transient(IntegrityError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("duplicate key")))


def _reason(record: Record) -> str:
    with pytest.raises(BadMessage) as caught:
        parse(record, TypeAdapter(InboundMessage), "inbound channel message")
    return caught.value.reason


def test_x4_json_nested_100000_levels_is_too_deep():
    assert _reason(Record(b"[" * 100_000 + b"]" * 100_000)) == "too_deep"
    assert _reason(Record(b'{"a":' * 100_000 + b"1" + b"}" * 100_000)) == "too_deep"


def test_x4_json_nested_past_the_limit_is_too_deep():
    deep = {"type": "inbound.message"}
    node = deep
    for _ in range(MAX_JSON_DEPTH):
        node["x"] = {}
        node = node["x"]
    assert _reason(Record(json.dumps(deep).encode())) == "too_deep"


def test_x4_broken_json_is_not_json():
    assert _reason(Record(b'{"broken": \n', [("content-type", b"application/json")])) == "not_json"


def test_x4_a_header_ticketflow_reads_that_is_not_utf8_is_named():
    record = Record(b"{}", [("ce_id", b"\xff\xfe")])
    with pytest.raises(BadMessage) as caught:
        envelope_of(record)
    assert caught.value.reason == "not_utf8_header" and "ce_id" in caught.value.detail
    assert _reason(record) == "not_utf8_header"


def test_x4_headers_ticketflow_does_not_read_are_carried_undecoded():
    record = Record(b"{}", [("x-binary-trace", b"\xff\xfe\x00")])
    assert envelope_of(record) is None


@pytest.mark.parametrize(("header", "value"), [
    ("ce_correlationid", b"c" * 448_000),
    ("ce_id", b"id\nwith-newline"),
    ("ce_causationid", b"\x1b[31mred"),
])
def test_x4_oversize_or_control_character_ce_headers_are_invalid(header, value):
    with pytest.raises(BadMessage) as caught:
        envelope_of(Record(b"{}", [("ce_id", b"e-1"), ("ce_type", b"t"), (header, value)]))
    assert caught.value.reason == "invalid_header" and header in caught.value.detail


def test_x4_a_dead_letter_keeps_the_record_whole_when_it_fits():
    record = Record(b"x" * 900_000, [("origin", b"gw-7")])
    letter = build_dead_letter(record, "inbound.messages", "BadMessage", "invalid_schema", "detail")
    headers = dict(letter.headers)
    assert letter.value == record.value and letter.key == b"k"
    assert headers["origin"] == b"gw-7" and headers["dlq_original_offset"] == b"41"
    assert "dlq_truncated" not in headers


def test_x4_a_dead_letter_too_large_for_the_topic_keeps_coordinates_hash_and_prefix():
    value = b"v" * (DEADLETTER_MAX_BYTES + 10)
    record = Record(value, [("small", b"s"), ("huge", b"h" * 500_000)])
    letter = build_dead_letter(record, "inbound.messages", "BadMessage", "too_large", "detail")
    headers = dict(letter.headers)
    assert letter.size <= FIT_BYTES
    assert headers["dlq_truncated"] == b"true"
    assert headers["dlq_value_sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert headers["dlq_value_size"] == str(len(value)).encode()
    assert headers["dlq_dropped_headers"] == b"huge" and headers["small"] == b"s"
    assert value.startswith(letter.value) and headers["dlq_original_partition"] == b"2"


def test_x4_the_minimal_dead_letter_has_no_value_and_no_original_headers():
    record = Record(b"v" * 10, [("small", b"s")])
    letter = build_dead_letter(record, "c", "E", "r", "d", minimal=True)
    assert letter.value == b"" and "small" not in dict(letter.headers)
    assert dict(letter.headers)["dlq_reason"] == b"r"


@pytest.mark.parametrize("body", [
    {"type": "delete_ticket_of_conversation", "command_id": "c1", "account_id": "a", "conversation_id": "x"},
    {"type": "apply_conversation_owner_to_ticket", "command_id": "c1", "account_id": "a", "conversation_id": "x",
     "owner_id": "o"},
    {"type": "close_conversation", "command_id": "c1", "account_id": "a", "conversation_id": "x",
     "actor_id": "system:sync"},
])
def test_x1_the_sync_workers_commands_are_refused_on_the_public_topics(body):
    from contracts.commands import conversation_command_adapter, ticket_command_adapter
    from workers.delivery.parsing import parse_with, public

    adapter = ticket_command_adapter if "ticket" in body["type"] else conversation_command_adapter
    with pytest.raises(BadMessage) as caught:
        parse_with(Record(json.dumps(body).encode()), public(adapter.validate_python), "command")
    assert caught.value.reason == "internal_command"


def test_x1_an_agents_command_passes_the_public_topic():
    from contracts.commands import conversation_command_adapter
    from workers.delivery.parsing import parse_with, public

    body = {"type": "close_conversation", "command_id": "c1", "account_id": "a", "conversation_id": "x",
            "actor_id": "agent-ann"}
    cmd = parse_with(Record(json.dumps(body).encode()), public(conversation_command_adapter.validate_python), "c")
    assert cmd.conversation_id == "x"


def test_s1_the_sync_workers_commands_go_to_the_internal_topics():
    from contracts import commands as c
    from contracts.topics import CONVERSATION_COMMANDS_INTERNAL, TICKET_COMMANDS_INTERNAL
    from workers.delivery.outgoing import outgoing

    close = c.CloseConversation(command_id="c1", account_id="a", conversation_id="x", actor_id="system:sync")
    follow = c.DeleteTicketOfConversation(command_id="c2", account_id="a", conversation_id="x")
    assert outgoing(close, "/ticketflow/sync", internal=True, prefix="p.").topic == "p." + CONVERSATION_COMMANDS_INTERNAL
    assert outgoing(follow, "/ticketflow/sync", internal=True).topic == TICKET_COMMANDS_INTERNAL
