"""How a failure is classified: bad input (dead-letter it), not yet known (wait), transient (retry).

Transient means "passes by itself": the database or the broker is down, restarting, failing over or
overloaded. Such failures are retried with backoff, forever, and never dead-lettered. Everything
else is permanent: retrying cannot help, so the record is dead-lettered (or, for the outbox relay,
parked) with its reason.

The classification looks through wrappers: SQLAlchemy wraps driver errors (`exc.orig`, `__cause__`),
and "the database system is shutting down" arrives as a plain `DBAPIError` whose driver error
carries SQLSTATE 57P01..57P03. The SQLSTATE decides, not the wrapper's class.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from aiokafka import errors as kafka_errors
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class BadMessage(Exception):
    """The message can never be processed as it is: it goes to the dead-letter topic with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class NotYetKnown(Exception):
    """The message names something missing from one of this worker's projections (an account, a
    conversation): perhaps only not applied yet. The delivery core retries the message until that
    projection has read everything published before the message arrived, then tells the handler
    to decide without waiting (see ADR 5 and `workers.delivery.barrier`)."""

    def __init__(self, projection: str, key: str) -> None:
        super().__init__(f"{projection} {key!r} not known yet")
        self.projection = projection
        self.key = key


class ConcurrentUpdate(Exception):
    """Another transaction changed the row since it was loaded (optimistic version check)."""


TRANSIENT_SQLSTATES = ("08", "53", "57P01", "57P02", "57P03", "57014", "40001", "40P01", "55P03", "58000", "58030",
                       "3D000")
"""SQLSTATE prefixes that pass by themselves: connection exceptions (class 08), insufficient resources
(53: too many connections, out of memory, disk full), admin/crash shutdown and "cannot connect now"
(57P01-57P03), a cancelled statement (57014), serialization failures and deadlocks (40001, 40P01),
lock not available (55P03), system I/O errors (58000, 58030), and a database that does not exist yet
(3D000: the server is up while provisioning has not created it)."""

_TRANSIENT_DRIVER_ERRORS = frozenset({
    "ConnectionDoesNotExistError", "CannotConnectNowError", "TooManyConnectionsError", "ConnectionFailureError",
    "AdminShutdownError", "CrashShutdownError", "ConnectionRejectionError", "InterfaceError",
    "InternalClientError", "PostgresConnectionError",
})
"""asyncpg exception class names (matched by name: asyncpg is optional on a SQLite deployment)."""

_TRANSIENT_KAFKA_ERRORS: tuple[type[BaseException], ...] = (
    kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError, kafka_errors.NoBrokersAvailable,
    kafka_errors.NodeNotReadyError, kafka_errors.RequestTimedOutError, kafka_errors.NotLeaderForPartitionError,
    kafka_errors.LeaderNotAvailableError, kafka_errors.NotEnoughReplicasError,
    kafka_errors.NotEnoughReplicasAfterAppendError, kafka_errors.UnknownTopicOrPartitionError,
    kafka_errors.GroupCoordinatorNotAvailableError, kafka_errors.NotCoordinatorForGroupError,
    kafka_errors.CoordinatorLoadInProgressError, kafka_errors.KafkaStorageError,
    kafka_errors.OutOfOrderSequenceNumber, kafka_errors.UnknownProducerId,
)
"""Broker errors of a leader change, a broker restart or a slow cluster. `UnknownTopicOrPartition` is
here because a topic's metadata is briefly unknown after a leader election; a topic that really does
not exist is an operator's error that `topics apply --check` names. `OutOfOrderSequenceNumber` and
`UnknownProducerId` follow a broker restart with a batch in flight: the producer starts a new session
(`workers/aiokafka_fixes.py`) and the records are sent again."""


def is_conflict(exc: BaseException) -> bool:
    """Two transactions raced (same row updated, same unique key inserted): retrying sees the winner."""
    return isinstance(exc, (ConcurrentUpdate, IntegrityError))


def causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error a SQLAlchemy wrapper holds, and every chained cause or context."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def sqlstate_of(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE somewhere in `exc`'s chain (asyncpg: `sqlstate`; psycopg: `pgcode`)."""
    for err in causes(exc):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(code, str) and code:
            return code
    return None


def is_transient(exc: BaseException) -> bool:
    """Failures that pass by themselves (database or broker down, restarting, failing over): retry, never
    dead-letter."""
    state = sqlstate_of(exc)
    if state is not None:
        return state.startswith(TRANSIENT_SQLSTATES)
    for err in causes(exc):
        if isinstance(err, DBAPIError) and err.connection_invalidated:
            return True
        if isinstance(err, (PoolTimeout, ConnectionError, asyncio.TimeoutError, TimeoutError)):
            return True
        if isinstance(err, OSError) and not isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError)):
            return True
        if isinstance(err, _TRANSIENT_KAFKA_ERRORS) or getattr(err, "retriable", False) is True:
            return True
        if type(err).__name__ in _TRANSIENT_DRIVER_ERRORS:
            return True
        if _is_sqlite_busy(err):
            return True
    return False


def dependency_of(exc: BaseException) -> str:
    """Which dependency a transient failure is about: "kafka" or "database"."""
    return "kafka" if any(isinstance(err, kafka_errors.KafkaError) for err in causes(exc)) else "database"


def _is_sqlite_busy(err: BaseException) -> bool:
    """SQLite's "database is locked" / "database is busy": another writer holds the lock."""
    text = str(err).lower()
    return type(err).__name__ == "OperationalError" and ("database is locked" in text or "database is busy" in text)
