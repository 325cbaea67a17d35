"""The sync worker's handler: an event's reactions, sent as commands. It owns no table."""

from __future__ import annotations

from contracts import events as e
from workers.handling import Deps, Handlers
from workers.sync import domain
from workers.unit import SendingUnit


async def relay_reactions(event: e.ConversationEvent | e.TicketEvent, uow: SendingUnit, _deps: Deps) -> None:
    """S1-S3, S5, T7, T8: the commands the event causes, with ids derived from the event's id (S7)."""
    for command in domain.react(uow.cause.id, event):
        await uow.publish(command)


HANDLERS: Handlers = {event_type: relay_reactions for event_type in domain.REACTIONS}
"""Events without a reaction (S4, S6, ...) have no handler: they are passed over."""
