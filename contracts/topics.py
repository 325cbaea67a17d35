"""The topic catalogue: every topic Ticketflow uses, what it carries and how it is keyed (X3).

`ticketflow topics apply` provisions exactly these; clients never auto-create topics. A deployment
may prefix every name (`TICKETFLOW_TOPIC_PREFIX`, used by tests to isolate runs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000
RECORD_MAX_BYTES = 1_000_000
"""The largest record (key + value + headers) Ticketflow publishes to a topic other than the dead-letter
topic: under the broker's default `message.max.bytes` (1,048,588) with room for framing."""
DEADLETTER_MAX_BYTES = 4 * 1024 * 1024
"""The dead-letter topic takes records up to 4 MiB, more than any input topic (the broker default, 1 MB),
so the dead letter of any input record fits (workers.delivery.deadletter)."""


@dataclass(frozen=True)
class TopicSpec:
    name: str
    carries: str
    key: str
    producers: str
    consumers: str
    partitions: int = 6
    cleanup_policy: str = "delete"
    retention_ms: int | None = 7 * DAY_MS
    extra_config: dict[str, str] = field(default_factory=dict)

    def configs(self, replication_factor: int) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        if replication_factor >= 3:
            cfg["min.insync.replicas"] = "2"
        cfg.update(self.extra_config)
        return cfg


INBOUND_MESSAGES = "ticketflow.inbound.messages.v1"
CONVERSATION_COMMANDS = "ticketflow.conversation.commands.v1"
TICKET_COMMANDS = "ticketflow.ticket.commands.v1"
CONVERSATION_COMMANDS_INTERNAL = "ticketflow.conversation.commands.internal.v1"
TICKET_COMMANDS_INTERNAL = "ticketflow.ticket.commands.internal.v1"
INTERNAL = {CONVERSATION_COMMANDS: CONVERSATION_COMMANDS_INTERNAL, TICKET_COMMANDS: TICKET_COMMANDS_INTERNAL}
"""Where the sync worker sends the commands it derives: topics only its principal may write (ADR 10), so an
outside producer cannot forge `delete_ticket_of_conversation` or a close "from the system"."""
CONVERSATION_EVENTS = "ticketflow.conversation.events.v1"
TICKET_EVENTS = "ticketflow.ticket.events.v1"
REJECTIONS = "ticketflow.command.rejections.v1"
OUTBOUND_MESSAGES = "ticketflow.outbound.messages.v1"
ACCOUNTS = "ticketflow.accounts.v1"
DEADLETTER = "ticketflow.deadletter.v1"

CATALOGUE: tuple[TopicSpec, ...] = (
    TopicSpec(INBOUND_MESSAGES, "inbound.message (contracts.inbound.InboundMessage)",
              "account_id:channel:channel_thread_key", "upstream channels", "inbound worker"),
    TopicSpec(CONVERSATION_COMMANDS, "conversation commands (contracts.commands.ConversationCommandUnion)",
              "conversation_id", "agents' tools", "inbound worker"),
    TopicSpec(TICKET_COMMANDS, "ticket commands (contracts.commands.TicketCommandUnion)",
              "ticket_id (conversation_id for create_ticket)", "agents' tools", "ticketing worker"),
    TopicSpec(CONVERSATION_COMMANDS_INTERNAL, "the sync worker's conversation commands (close, reopen, trash, "
              "move to the help desk)", "conversation_id", "sync worker only", "inbound worker"),
    TopicSpec(TICKET_COMMANDS_INTERNAL, "the sync worker's ticket commands (apply_conversation_owner_to_ticket, "
              "delete_ticket_of_conversation)", "conversation_id", "sync worker only", "ticketing worker"),
    TopicSpec(CONVERSATION_EVENTS, "conversation.* events (contracts.events.ConversationEventUnion)",
              "conversation_id", "inbound worker", "ticketing worker, sync worker, other services",
              retention_ms=30 * DAY_MS),
    TopicSpec(TICKET_EVENTS, "ticket.* events (contracts.events.TicketEventUnion)",
              "ticket_id", "ticketing worker", "sync worker, other services", retention_ms=30 * DAY_MS),
    TopicSpec(REJECTIONS, "command.rejected (contracts.events.CommandRejected)",
              "command_id", "inbound and ticketing workers", "command senders", partitions=3),
    TopicSpec(OUTBOUND_MESSAGES, "outbound.message (contracts.events.OutboundMessage)",
              "conversation_id", "inbound worker", "channels (delivery)"),
    TopicSpec(ACCOUNTS, "account (contracts.accounts.Account), latest per key",
              "account_id", "account service / `ticketflow accounts put`", "inbound and ticketing workers",
              partitions=3, cleanup_policy="compact", retention_ms=None,
              extra_config={"min.cleanable.dirty.ratio": "0.1"}),
    TopicSpec(DEADLETTER, "any message a worker could not process: original key, bytes and headers, plus dlq_* headers",
              "the original key", "every worker", "operators (`ticketflow deadletters`)",
              partitions=3, retention_ms=30 * DAY_MS,
              extra_config={"max.message.bytes": str(DEADLETTER_MAX_BYTES)}),
)
