"""Capped exponential backoff, shared by every retry loop (handlers, dead letters, the relay, startup)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from workers.delivery.errors import dependency_of, is_transient
from workers.delivery.report import SILENT, Report

T = TypeVar("T")


class Backoff:
    """`await backoff.wait()` sleeps 1x, 2x, 4x ... `initial`, at most `cap` seconds, with 10% jitter."""

    def __init__(self, initial: float = 0.1, cap: float = 5.0) -> None:
        self.initial = initial
        self.cap = cap
        self.delay = initial

    def reset(self) -> None:
        self.delay = self.initial

    async def wait(self) -> float:
        """Sleep the current delay; returns it. The next wait is twice as long, up to the cap."""
        slept = self.next_delay()
        await asyncio.sleep(slept)
        return slept

    def next_delay(self) -> float:
        """The current delay with its jitter, for a caller that waits on something else meanwhile; the
        next one is twice as long, up to the cap."""
        delay = self.delay * random.uniform(0.9, 1.1)
        self.delay = min(self.delay * 2, self.cap)
        return delay


async def until_available(step: Callable[[], Awaitable[T]], what: str, log: logging.Logger,
                          backoff: Backoff | None = None, report: Report = SILENT) -> T:
    """Run `step` until it succeeds, retrying transient failures (broker or database down) forever; a
    permanent failure is raised at once. `report` hears which dependency it waits for, and when it is back."""
    backoff = backoff or Backoff(0.5, 10.0)
    waited: str | None = None
    while True:
        try:
            result = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                raise
            waited = dependency_of(exc)
            report.waiting(waited)
            log.warning("%s unavailable, retrying in %.1fs: %r", what, backoff.delay, exc)
            await backoff.wait()
            continue
        if waited is not None:
            report.available(waited)
        return result
