"""What the `ticketflow` CLI says when something fails: one line on stderr, and an exit code per cause.

| exit | cause |
| --- | --- |
| 1 | the operation failed: a topic could not be created, drift, a record that does not exist, a refused skip |
| 2 | usage or configuration (wrong options, a bad environment variable) |
| 3 | Kafka unreachable (nothing answers at `KAFKA_BOOTSTRAP_SERVERS`, or it times out) |
| 4 | database unreachable (nothing answers at `DATABASE_URL`, or it refuses the connection) |

Passwords never appear: URLs are printed with the password masked.
"""

from __future__ import annotations

import asyncio
import traceback
from dataclasses import dataclass

from aiokafka import errors as kafka_errors
from sqlalchemy import exc as sql_errors

from workers.kafka import TlsFileUnreadable
from workers.settings import Settings, masked_url

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_KAFKA = 3
EXIT_DATABASE = 4

_KAFKA_DOWN = (
    kafka_errors.KafkaConnectionError, kafka_errors.KafkaTimeoutError, kafka_errors.NoBrokersAvailable,
    kafka_errors.RequestTimedOutError, kafka_errors.NodeNotReadyError, kafka_errors.BrokerNotAvailableError,
)
_DATABASE_DOWN = (sql_errors.OperationalError, sql_errors.InterfaceError)
_DATABASE_DOWN_SQLSTATES = ("08", "57P", "53", "28")  # connection, shutdown/startup, resources, authentication
_DATABASE_LIBRARIES = ("asyncpg", "aiosqlite", "sqlite3", "sqlalchemy", "alembic")
_KAFKA_LIBRARIES = ("aiokafka",)


class OperatorError(Exception):
    """An operator command could not do what was asked; the message says why, in one line."""

    exit_code = EXIT_FAILED


class KafkaUnreachable(OperatorError):
    """The broker does not answer (or its group coordinator never becomes available)."""

    exit_code = EXIT_KAFKA


@dataclass(frozen=True)
class Failure:
    message: str
    exit_code: int


def classify(exc: BaseException, settings: Settings) -> Failure | None:
    """The one line and exit code for an error an operator can act on; None for a bug (keep its traceback)."""
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return classify(exc.exceptions[0], settings)
    if isinstance(exc, OperatorError):
        return Failure(str(exc), exc.exit_code)
    if isinstance(exc, TlsFileUnreadable):
        return Failure(f"configuration: {exc}", EXIT_USAGE)
    if _database_down(exc):
        return Failure(f"database unreachable at {masked_url(settings.database_url)} (DATABASE_URL): "
                       f"{_summary(exc)}", EXIT_DATABASE)
    if _kafka_down(exc):
        return Failure(f"Kafka unreachable at {settings.bootstrap_servers} (KAFKA_BOOTSTRAP_SERVERS): "
                       f"{_summary(exc)}", EXIT_KAFKA)
    if isinstance(exc, kafka_errors.KafkaError):
        return Failure(f"Kafka refused the request: {_summary(exc)}", EXIT_FAILED)
    return None


def _kafka_down(exc: BaseException) -> bool:
    if isinstance(exc, _KAFKA_DOWN):
        return True
    return isinstance(exc, (OSError, asyncio.TimeoutError)) and _raised_in(exc) in _KAFKA_LIBRARIES


def _database_down(exc: BaseException) -> bool:
    if isinstance(exc, _DATABASE_DOWN):
        return True
    if isinstance(exc, sql_errors.DBAPIError):
        return str(getattr(exc.orig, "sqlstate", "") or "").startswith(_DATABASE_DOWN_SQLSTATES)
    return isinstance(exc, (OSError, asyncio.TimeoutError)) and _raised_in(exc) in _DATABASE_LIBRARIES


def _raised_in(exc: BaseException) -> str | None:
    """The top-level package of the innermost library frame that raised `exc` (who made the connection)."""
    found = None
    for frame, _line in traceback.walk_tb(exc.__traceback__):
        package = str(frame.f_globals.get("__name__", "")).split(".")[0]
        if package in _DATABASE_LIBRARIES or package in _KAFKA_LIBRARIES:
            found = package
    return found


def _summary(exc: BaseException) -> str:
    """The exception's class and the first line of its message (drivers' messages can span lines)."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = text[0][:300] if text else ""
    name = type(exc).__name__
    return first if first.startswith(name) else f"{name}: {first}" if first else name
