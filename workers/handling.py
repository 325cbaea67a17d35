"""What a handler gets besides its message and its unit of work: a clock and an id source (and, in
the ticketing worker, the T8 policy). Handlers are looked up by the message's type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.commands import Command
from storage.unit_of_work import now_utc
from workers.ids import new_id


@dataclass(frozen=True)
class Deps:
    clock: Callable[[], datetime] = field(default=now_utc)
    new_id: Callable[[], str] = field(default=new_id)


Handler = Callable[[Any, Any, Any], Awaitable[None]]
"""handler(message, unit, deps): load what the rule needs, call it, conclude."""

Handlers = Mapping[type, Handler]
"""Message type -> its handler. A type with no handler is passed over (an event this worker ignores)."""


async def run_handler(handler: Handler, message: Any, uow: Any, deps: Any) -> None:
    """Run `handler` unless `message` is a command this consumer already processed (X5): a replayed
    `command_id` of the same account changes nothing, publishes nothing and is no dead letter. Checked
    here, where every handler is called, so that no command handler can forget it."""
    if isinstance(message, Command) and await uow.already_processed(message.account_id, message.command_id):
        return
    await handler(message, uow, deps)
