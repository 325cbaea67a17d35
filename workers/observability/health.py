"""Liveness and readiness of a worker process, for `/health/live` and `/health/ready`.

Live: the event loop answers (the server runs on it) and no worker has failed for good.
Ready: every fact the worker set is true (broker connected, consumers in their groups, ...) and every
check passes when the probe asks (database reachable, outbox age under its threshold).

    health = Health()
    health.require("inbound.broker")                  # not ready until set
    health.set("inbound.broker", True)                # the worker's own code sets facts
    health.add_check("inbound.database", database_check(engine))
    report = await health.ready()                     # what the probe gets
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from workers.observability.outbox import outbox_backlog

Check = Callable[[], Awaitable[str | None]]
"""A readiness check: returns None when fine, or a short reason it is not (raising counts as not fine)."""


@dataclass(frozen=True)
class Status:
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class Report:
    """The answer to a probe: ok, and each fact or check by name."""

    ok: bool
    items: dict[str, Status] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "fail",
                "checks": {name: {"ok": s.ok, **({"detail": s.detail} if s.detail else {})}
                           for name, s in sorted(self.items.items())}}


class Health:
    """Facts set by the worker and checks run per probe. `check_timeout` bounds each check."""

    def __init__(self, check_timeout: float = 2.0) -> None:
        self.check_timeout = check_timeout
        self._facts: dict[str, Status] = {}
        self._checks: dict[str, Check] = {}
        self._failure: str | None = None

    def require(self, fact: str, detail: str = "not yet") -> None:
        """Declare a fact readiness waits for (false until `set`)."""
        self._facts.setdefault(fact, Status(False, detail))

    def set(self, fact: str, ok: bool, detail: str = "") -> None:
        """Set a fact (e.g. "inbound.broker" True once connected, False with a detail while retrying)."""
        self._facts[fact] = Status(ok, detail)

    def add_check(self, name: str, check: Check) -> None:
        """Run `check` on every readiness probe."""
        self._checks[name] = check

    def fail(self, reason: str) -> None:
        """A worker stopped for good: liveness fails from now on (the orchestrator restarts the process)."""
        if self._failure is None:
            self._failure = reason

    def live(self) -> Report:
        if self._failure is not None:
            return Report(False, {"worker": Status(False, self._failure)})
        return Report(True, {"event_loop": Status(True)})

    async def ready(self) -> Report:
        items = dict(self._facts)
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(self._checks[n]) for n in names))
        items.update(zip(names, results, strict=True))
        if self._failure is not None:
            items["worker"] = Status(False, self._failure)
        return Report(all(s.ok for s in items.values()), items)

    async def _run(self, check: Check) -> Status:
        try:
            problem = await asyncio.wait_for(check(), self.check_timeout)
        except TimeoutError:
            return Status(False, f"no answer within {self.check_timeout:g}s")
        except Exception as exc:
            return Status(False, f"{type(exc).__name__}: {exc}"[:300])
        return Status(problem is None, problem or "")


def database_check(engine: AsyncEngine) -> Check:
    """Readiness: the database answers `SELECT 1`."""
    async def check() -> str | None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    return check


def outbox_check(engine: AsyncEngine, producer: str, max_age_seconds: float) -> Check:
    """Readiness: the oldest unsent outbox row of `producer` is younger than `max_age_seconds`."""
    async def check() -> str | None:
        backlog = await outbox_backlog(engine, producer)
        if backlog.oldest_unsent_age_seconds > max_age_seconds:
            return (f"oldest unsent outbox row is {backlog.oldest_unsent_age_seconds:.0f}s old "
                    f"(limit {max_age_seconds:g}s; {backlog.unsent} unsent, {backlog.parked} parked)")
        return None
    return check


class Pingable(Protocol):
    async def ping(self, timeout: float | None) -> bool: ...


def broker_check(broker: Pingable, timeout: float = 1.0) -> Check:
    """Readiness: the broker answers a metadata request (FastStream's `KafkaBroker.ping`)."""
    async def check() -> str | None:
        return None if await broker.ping(timeout) else "Kafka does not answer"
    return check
