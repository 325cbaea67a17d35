"""How a failure is classified: bad input (dead-letter it), not yet known (wait), transient (retry)."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class BadMessage(Exception):
    """The message can never be processed as it is: it goes to the dead-letter topic with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class NotYetKnown(Exception):
    """The message names something this worker has not heard of yet (an account, a conversation).

    Its owner may simply not have published it yet, so the handler waits a grace period before
    treating it as unknown.
    """


class ConcurrentUpdate(Exception):
    """Another transaction changed the row since it was loaded (optimistic version check)."""


def is_conflict(exc: BaseException) -> bool:
    """Two transactions raced (same row updated, same unique key inserted): retrying sees the winner."""
    return isinstance(exc, (ConcurrentUpdate, IntegrityError))


def is_transient(exc: BaseException) -> bool:
    """Failures that pass by themselves (database down, locked, connection lost): retry, never dead-letter."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, ConnectionError, OSError, asyncio.TimeoutError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    name = type(exc).__name__
    return name in {"ConnectionDoesNotExistError", "CannotConnectNowError", "TooManyConnectionsError",
                    "InterfaceError", "ConnectionFailureError", "AdminShutdownError"}
