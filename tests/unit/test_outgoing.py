"""The record a worker publishes for a contract: its CloudEvents headers are the envelope's, built
straight from the values (X3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from contracts.commands import CloseConversation
from contracts.envelope import Envelope
from contracts.events import ConversationClosed
from workers.delivery.outgoing import outgoing

TIME = datetime(2026, 11, 26, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=2)))
CAUSE = Envelope(id="cause-1", type="inbound.message", source="/x", time=TIME, correlation_id="corr-1")


def test_x3_an_events_headers_are_its_envelopes_with_a_new_id_and_the_causes_correlation():
    event = ConversationClosed(conversation_id="conv-1", account_id="acme", version=3, occurred_at=TIME)
    record = outgoing(event, "/ticketflow/inbound", CAUSE, prefix="p.", time=TIME)
    expected = Envelope(id=record.id, type="conversation.closed", source="/ticketflow/inbound", time=TIME,
                        subject="conv-1", account_id="acme", correlation_id="corr-1", causation_id="cause-1")
    assert record.text_headers == tuple(expected.header_pairs())
    assert dict(record.text_headers)["ce_time"] == TIME.astimezone(UTC).isoformat()
    assert record.topic == f"p.{ConversationClosed.TOPIC}" and record.key == "conv-1"
    assert outgoing(event, "/s", CAUSE, time=TIME).id != record.id


def test_x3_a_command_keeps_its_command_id_and_without_a_cause_correlates_with_itself():
    cmd = CloseConversation(command_id="cmd-7", account_id="acme", actor_id="agent-1", conversation_id="conv-1")
    record = outgoing(cmd, "/ticketflow/sync", time=TIME, internal=True)
    assert record.id == "cmd-7"
    expected = Envelope(id="cmd-7", type=cmd.type, source="/ticketflow/sync", time=TIME, subject=cmd.partition_key(),
                        account_id="acme", correlation_id="cmd-7")
    assert record.text_headers == tuple(expected.header_pairs())
