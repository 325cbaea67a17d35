"""What the delivery core tells about its work: counts for metrics, and which dependency it waits for.
`workers.observability.metrics.WorkerMetrics` is the real one; `SILENT` tells no one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Report(Protocol):
    def processed(self, input: str, count: int = 1) -> None: ...
    def rejected(self, input: str, reason: str) -> None: ...
    def dead_lettered(self, input: str, reason: str) -> None: ...
    def waiting(self, dependency: str, retry: bool = True) -> None: ...
    def available(self, dependency: str) -> None: ...
    def relay_published(self, count: int) -> None: ...
    def relay_failed(self, kind: str, count: int = 1) -> None: ...
    def batch(self, input: str, size: int, seconds: float) -> None: ...
    def waited(self, input: str, ages: Iterable[float]) -> None: ...
    def relay_delays(self, delays: Iterable[float]) -> None: ...


class Silent:
    """A report nobody reads (tools, tests that build parts of a worker alone)."""

    def processed(self, input: str, count: int = 1) -> None:
        pass

    def rejected(self, input: str, reason: str) -> None:
        pass

    def dead_lettered(self, input: str, reason: str) -> None:
        pass

    def waiting(self, dependency: str, retry: bool = True) -> None:
        pass

    def available(self, dependency: str) -> None:
        pass

    def relay_published(self, count: int) -> None:
        pass

    def relay_failed(self, kind: str, count: int = 1) -> None:
        pass

    def batch(self, input: str, size: int, seconds: float) -> None:
        pass

    def waited(self, input: str, ages: Iterable[float]) -> None:
        pass

    def relay_delays(self, delays: Iterable[float]) -> None:
        pass


SILENT = Silent()


def input_of(consumer: str) -> str:
    """The input (subscriber purpose) of a consumer name `worker.input`."""
    return consumer.split(".", 1)[-1]
