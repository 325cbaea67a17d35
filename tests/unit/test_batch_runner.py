"""The batch runner's bookkeeping, without a broker or a database (its delivery guarantees are proved
end to end on the real broker, tests/e2e and tests/chaos)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel

from workers.delivery.batch import BatchRunner
from workers.delivery.reliable import ReliableHandler


class Handled(BaseModel):
    type: str

    def natural_id(self) -> str:
        return "handled-1"

    def partition_key(self) -> str:
        return "k"


class PassedOver(BaseModel):
    type: str


def _read(data: dict[str, Any]) -> Any:
    return Handled(**data) if data["type"] == "handled" else PassedOver(**data)


def _record(offset: int, kind: str) -> Any:
    return SimpleNamespace(topic="in", partition=0, offset=offset, key=b"k", value=json.dumps({"type": kind}).encode(),
                           headers=[], timestamp=0, timestamp_type=0)


async def test_x5_a_batch_no_handler_takes_opens_no_transaction() -> None:
    """Records of a type this input passes over (the sync worker's view of `message_received`, say) need
    no unit of work: a batch of only those used to open one anyway, BEGIN and COMMIT for nothing."""
    opened: list[str] = []

    class Unit:
        def __init__(self, consumer: str, _cause: Any, _caught_up: Any) -> None:
            opened.append(consumer)

        async def __aenter__(self) -> Unit:
            return self

        async def __aexit__(self, *_exc: Any) -> None:
            return None

        async def prefetch(self, _messages: Any) -> None:
            return None

        writes = 0

    handled: list[Any] = []

    async def handle(message: Any, _uow: Any, _deps: Any) -> None:
        handled.append(message)

    async def one(_record: Any, _caught_up: Any) -> None:
        raise AssertionError("no record is handled alone")

    reliable = ReliableHandler("w.in", producer=lambda: None, deadletter_topic="dl")  # type: ignore[arg-type,return-value]
    runner = BatchRunner(reliable, _read, "thing", {Handled: handle}, Unit, None, one)
    await runner.run([_record(0, "other"), _record(1, "other")])
    assert opened == [] and handled == []
    await runner.run([_record(2, "other"), _record(3, "handled")])
    assert opened == ["w.in"] and handled == [Handled(type="handled")]
