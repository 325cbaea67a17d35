"""The benchmark's view of a consumer group while no coordinator answers for it yet (a broker just started
creates `__consumer_offsets` on the first group's lookup): it asks again, as any Kafka client would, rather
than failing the scenario (seen: `raw` failed with GroupCoordinatorNotAvailableError on a fresh broker)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka import errors as kafka_errors

from benchmarks.kafkaops import Broker


class FlakyAdmin:
    """Refuses the first `away` calls with GroupCoordinatorNotAvailableError, then answers."""

    def __init__(self, away: int) -> None:
        self.away = away
        self.calls = 0

    def _refuse(self) -> None:
        self.calls += 1
        if self.calls <= self.away:
            raise kafka_errors.GroupCoordinatorNotAvailableError("Unable to get coordinator id")

    async def find_coordinator(self, group: str) -> int:
        self._refuse()
        return 1

    async def _send_request(self, request: Any, node: int) -> Any:
        return SimpleNamespace(groups=[(0, "g", "Stable", "consumer", "range", [object()])])

    async def list_consumer_group_offsets(self, group: str, partitions: list[TopicPartition]) -> dict[Any, Any]:
        self._refuse()
        return {p: SimpleNamespace(offset=5) for p in partitions}


def broker_with(admin: FlakyAdmin) -> Broker:
    broker = Broker.__new__(Broker)
    broker.admin = admin  # type: ignore[assignment]
    broker._coordinators = {}
    return broker


async def test_a_group_whose_coordinator_is_not_available_yet_is_unknown_then_stable() -> None:
    broker = broker_with(FlakyAdmin(away=1))
    assert (await broker.group_state("g")).state == "Unknown"
    state = await broker.group_state("g")
    assert (state.state, state.members) == ("Stable", 1)


async def test_committed_offsets_are_asked_again_while_the_coordinator_is_not_available(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr("benchmarks.kafkaops.asyncio.sleep", no_wait)
    admin = FlakyAdmin(away=3)
    parts = [TopicPartition("t", 0), TopicPartition("t", 1)]
    assert await broker_with(admin).committed_total("g", parts) == 10
    assert admin.calls == 4
