"""The tests' driver (tools.driver) on the secured broker: each record goes out as the principal the
generated ACLs let write its topic (commands as `agents`, inbound messages as `channels`, a repeated event
as the worker that publishes it); what has no such principal (the accounts topic) as the driver's own
settings (admin). The probe and `settle` read as admin."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from ticketflow.acls import CLIENTS, Operation, Resource, generate
from tools.driver import Driver
from tools.probe import Probe
from workers.settings import Settings


def writers(acls_for: Settings, principals: Mapping[str, Settings]) -> dict[str, Settings]:
    """topic -> the settings of a principal allowed to write it (a client before a worker)."""
    found: dict[str, Settings] = {}
    for acl in sorted(generate(acls_for), key=lambda a: a.user in CLIENTS):
        if acl.resource is Resource.TOPIC and acl.operation is Operation.WRITE:
            found[acl.name] = principals[acl.user]
    return found


class SecuredDriver(Driver):
    """tools.driver.Driver whose records go out as the principal allowed to write their topic (`writers`)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, probe: Probe, writers: Mapping[str, Settings]) -> None:
        super().__init__(settings, engine, probe)
        self.writers = writers

    def _as_writer_of(self, topic: str) -> Driver:
        """The plain driver, as the principal that may write `topic`."""
        return Driver(self.writers.get(topic, self.settings), self.engine, self.probe)

    async def publish(self, *bodies: Any) -> list[str]:
        return [i for body in bodies for i in await self._as_writer_of(self.settings.topic(body.TOPIC)).publish(body)]

    async def publish_raw(self, topic: str, key: bytes | None, value: bytes,
                          headers: list[tuple[str, bytes]] | None = None, partition: int | None = None) -> None:
        await self._as_writer_of(topic).publish_raw(topic, key, value, headers, partition)
