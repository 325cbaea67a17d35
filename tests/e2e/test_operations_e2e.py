"""Operating a worker, end to end (X4, X5): a worker process serves `/metrics` and its health routes,
and the numbers move as the flow says: records processed, a dead letter counted by its reason, the
outbox backlog and the consumer lag back to 0; the process is live and ready."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.request
from datetime import UTC

from contracts.topics import DEADLETTER, INBOUND_MESSAGES
from tests.support.processes import isolated, stop, worker_process
from tests.support.services import fresh_database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _get(url: str) -> tuple[int, str]:
    def fetch() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
    return await asyncio.to_thread(fetch)


def _value(metrics: str, name: str, **labels: str) -> float:
    """The sample of `name` whose labels include `labels` (0 when absent)."""
    for line in metrics.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[line.index("{"):line.index("}")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _until(url: str, check: object, what: str, timeout: float = 90.0) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        _status, body = await _get(url)
        if check(body):  # type: ignore[operator]
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"waited for {what}; last /metrics:\n{body[-3000:]}")
        await asyncio.sleep(0.5)


async def test_x4_x5_a_worker_reports_its_work_on_metrics_and_health(system, postgres):
    async with fresh_database(postgres) as database_url:  # its own outbox: no other inbound relay takes its rows
        await _worker_reports_its_work(system, database_url)


async def _worker_reports_its_work(system, database_url: str) -> None:
    settings, iso = await isolated(system)
    settings = settings.model_copy(update={"database_url": database_url})
    iso.settings = settings
    port = _free_port()
    worker = worker_process(settings, "inbound", TICKETFLOW_HTTP_PORT=str(port), TICKETFLOW_HTTP_HOST="127.0.0.1",
                            TICKETFLOW_SAMPLE_INTERVAL_SECONDS="1")
    base = f"http://127.0.0.1:{port}"
    try:
        account = await iso.account()
        messages = [iso.inbound(account) for _ in range(5)]
        for msg in messages:
            await iso.publish(msg)
        await iso.publish_raw(settings.topic(INBOUND_MESSAGES), b"k", b"{not json")
        await iso.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER), what="the dead letter")
        for msg in messages:
            await iso.probe.wait_for(lambda r, m=msg.channel_message_id: r.type == "conversation.message_received"
                                     and r.body["channel_message_id"] == m)

        def settled(body: str) -> bool:
            return (_value(body, "ticketflow_records_processed_total", worker="inbound", input="messages") >= 6
                    and _value(body, "ticketflow_records_dead_lettered_total", worker="inbound", input="messages",
                               reason="not_json") == 1
                    and "ticketflow_outbox_unsent_rows{" in body
                    and _value(body, "ticketflow_outbox_unsent_rows", worker="inbound") == 0
                    and "ticketflow_consumer_lag{" in body
                    and all(float(line.rsplit(" ", 1)[1]) == 0 for line in body.splitlines()
                            if line.startswith("ticketflow_consumer_lag{")))

        body = await _until(f"{base}/metrics", settled, "processed, dead-lettered, outbox and lag figures")
        relayed = _value(body, "ticketflow_relay_published_total", worker="inbound")
        assert relayed >= 10, [line for line in body.splitlines() if "relay" in line]  # created + received each
        # where a record's time goes: waiting for its batch, the batch, the outbox until the broker's ack
        assert _value(body, "ticketflow_record_wait_seconds_count", worker="inbound", input="messages") >= 6
        assert _value(body, "ticketflow_batch_duration_seconds_count", worker="inbound", input="messages") >= 1
        assert _value(body, "ticketflow_relay_delay_seconds_count", worker="inbound") == relayed
        live_status, _live = await _get(f"{base}/health/live")
        ready_status, ready = await _get(f"{base}/health/ready")
        assert live_status == 200
        assert ready_status == 200, ready
        assert json.loads(ready)["status"] == "ok"
        relay = json.loads(ready)["checks"]["inbound.relay"]  # its relay process (ADR 17), whose counts are above
        assert relay["ok"] is True and relay["detail"].startswith("relay process "), relay
    finally:
        await stop(worker)
        await iso.probe.stop()


async def test_s1_one_trace_shows_a_ticket_close_and_every_conversation_it_closed(system):
    """The trace context of an agent's command crosses the outbox into `ticket.closed`, the sync worker's
    `close_conversation` commands, and each `conversation.closed` (W3C `traceparent` headers)."""
    from datetime import datetime

    from contracts import commands as c
    from contracts.envelope import Envelope
    from contracts.topics import TICKET_COMMANDS

    account = await system.account()
    ticket, first, second = await system.ticket_with_two_conversations(account)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    close = c.ChangeTicketStatus(command_id="trace-close-" + ticket, account_id=account, ticket_id=ticket,
                                 status="closed")
    env = Envelope(id=close.command_id, type=close.type, source="/agents-tool", time=datetime.now(UTC),
                   subject=ticket, account_id=account)
    headers = [*env.to_headers(), ("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01".encode())]
    await system.publish_raw(system.settings.topic(TICKET_COMMANDS), ticket.encode(), close.model_dump_json().encode(),
                             headers)
    closed = await system.wait_event(ticket, "ticket.closed")
    conv_closed = [(await system.wait_event(conv, "conversation.closed"))[0] for conv in (first, second)]
    commands = system.probe.matching(lambda r: r.type == "close_conversation" and r.key in (first, second))
    assert len(commands) == 2
    for record in [*closed, *commands, *conv_closed]:
        assert record.headers.get("traceparent", "").split("-")[1:2] == [trace_id], (record.topic, record.headers)
