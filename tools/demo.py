"""`ticketflow demo`: a day in a support inbox, played the way channels and agents would play it.

It starts the three workers, publishes inbound messages and agents' commands to Kafka, waits for the
system to settle, prints each conversation and ticket with its events in order, checks the outcomes
the rules promise, stops everything and exits 0 (1 if an outcome differs).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contracts import commands as c
from contracts.common import Channel, Tier, Workspace
from contracts.topics import DEADLETTER, INBOUND_MESSAGES
from readmodel.context import conversation_context
from storage.database import create_engine
from ticketflow.provisioning import apply_topics, delete_topics_under
from ticketflow.running import start_workers, stop_workers
from tools.driver import WATCHED, Driver
from tools.probe import Probe
from workers.observability.logs import configure_logging, level_for
from workers.settings import Settings, run_dir


@dataclass
class Story:
    """What happened, in words, and the checks the rules promise."""

    names: dict[str, str] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def name(self, ident: str, label: str) -> str:
        self.names[ident] = label
        return ident

    def check(self, rule: str, ok: bool, what: str) -> None:
        self.checks.append((rule, ok, what))

    def label(self, ident: str | None) -> str:
        return self.names.get(ident or "", (ident or "-")[:8])


def say(text: str) -> None:
    print(f"  - {text}")


async def play(d: Driver, story: Story) -> None:
    """The day, step by step. Each step waits only for the outcome it needs to go on."""
    north = await d.account(tier=Tier.STARTER, created_at=datetime(2021, 3, 1, tzinfo=UTC))
    contoso = await d.account(tier=Tier.PROFESSIONAL, created_at=datetime(2024, 9, 1, tzinfo=UTC))
    story.name(north, "Northwind (starter, 2021)")
    story.name(contoso, "Contoso (professional, 2024-09)")
    print(f"\nAccounts: {story.label(north)} and {story.label(contoso)} published on the accounts topic.\n")

    print("Morning: messages arrive")
    first = d.inbound(north, thread="email-thread-1042", email="alice@example.com", name="Alice",
                      subject="Order #1042 arrived damaged", text="The vase in order 1042 arrived broken.")
    a = story.name(await d.receive(first), "A: Alice, email 'Order #1042 arrived damaged'")
    say("Alice emails about a damaged order -> conversation A")
    await d.publish(first)
    say("the email gateway redelivers Alice's email (same message id)")
    follow = d.inbound(north, thread="email-thread-1042", email="alice@example.com", name="Alice", subject="Re: Order #1042",
                       text="Photos attached.")
    await d.receive(follow)
    say("Alice follows up in the same email thread -> threaded into A")
    b = story.name(await d.new_conversation(north, channel=Channel.CHAT, thread="chat-77", email="bob@example.com", name="Bob",
                                             subject=None, text="Is my order 1042 insured?"),
                   "B: Bob, chat about the same order")
    say("Bob asks on chat -> conversation B")
    w = story.name(await d.new_conversation(north, channel=Channel.WHATSAPP, thread="+31612345678", email=None,
                                             phone="+31 6 1234 5678", subject=None, text="Where is my parcel?"),
                   "W: +31612345678, WhatsApp")
    say("a WhatsApp message from a phone number -> conversation W")
    dave = story.name(await d.new_conversation(north, thread="email-spam-1", email="dave@example.com", name="Dave",
                                                subject="Cheap watches", text="Buy now"),
                      "D: Dave, spam email")
    say("Dave sends spam -> conversation D")

    print("\nAgents at work")
    await d.command(c.AssignConversationOwner, north, conversation_id=a, owner_id="ann")
    await d.wait_event(a, "conversation.owner_changed")
    say("A is assigned to Ann")
    ta = story.name(await d.new_ticket(north, a, priority="high"), "Ticket 1 (from A)")
    say("Ann creates a ticket from A: subject, pipeline, status and owner come from the conversation (T1)")
    await d.command(c.ReplyToConversation, north, conversation_id=a, actor_id="ann",
                    text="So sorry, Alice! A replacement is on its way.")
    await d.wait_event(a, "conversation.message_sent")
    say("Ann replies to Alice; the reply goes out on the outbound topic for the email gateway (C4)")
    await d.command(c.AssignConversationOwner, north, conversation_id=a, owner_id="bruno")
    await d.wait_event(ta, "ticket.owner_changed")
    say("A is handed to Bruno; the ticket's owner follows (S3)")
    await d.command(c.ChangeTicketOwner, north, ticket_id=ta, owner_id="chen")
    await d.wait_event(ta, "ticket.owner_changed", count=2)
    say("the ticket is given to Chen; A stays Bruno's (T6/S4)")
    second = await d.command(c.CreateTicket, north, conversation_id=a)
    await d.rejection(second)
    say("someone tries a second ticket for A: rejected (T2)")
    unlink = await d.command(c.RemoveConversationAssociation, north, ticket_id=ta, conversation_id=a)
    await d.rejection(unlink)
    say("someone tries to unlink A from its ticket: rejected (T3)")
    bad_edit = await d.command(c.UpdateTicketProperties, north, ticket_id=ta, properties={"colour": "red", "priority": "asap"})
    await d.rejection(bad_edit)
    say("an edit with an unknown property and a bad priority: rejected, naming both (T4)")
    tb = story.name(await d.new_ticket(north, b), "Ticket 2 (from B)")
    await d.command(c.MergeTickets, north, ticket_id=ta, merged_ticket_id=tb)
    await d.wait_event(tb, "ticket.merged")
    say("Bob's ticket is merged into ticket 1: it now holds A and B (T9)")

    print("\nClosing and reopening")
    await d.command(c.ChangeTicketStatus, north, ticket_id=ta, status="closed")
    await d.wait_event(a, "conversation.closed")
    await d.wait_event(b, "conversation.closed")
    say("ticket 1 is closed: A and B close with it (S1)")
    await d.command(c.ChangeTicketStatus, north, ticket_id=ta, status="waiting_on_us")
    await d.wait_event(ta, "ticket.reopened")
    await d.settle()
    say("ticket 1 is reopened: it has two conversations, so neither reopens (S2)")
    tw = story.name(await d.new_ticket(north, w), "Ticket 3 (from W)")
    await d.command(c.ChangeTicketStatus, north, ticket_id=tw, status="closed")
    await d.wait_event(w, "conversation.closed")
    await d.command(c.ChangeTicketStatus, north, ticket_id=tw, status="new")
    await d.wait_event(w, "conversation.reopened")
    say("ticket 3 is closed and reopened: its only conversation W follows both times (S1, S2)")
    await d.command(c.CloseConversation, north, conversation_id=w)
    await d.wait_event(w, "conversation.closed", count=2)
    say("W alone is closed; ticket 3 stays open (C6/S6)")
    again = d.inbound(north, thread="email-thread-1042", email="alice@example.com", name="Alice", subject="Re: Order #1042",
                      text="The replacement arrived, thanks!")
    await d.receive(again)
    say("Alice writes again on the closed thread: A reopens (C3, the account's setting)")
    a2 = story.name(await d.new_conversation(north, thread="email-thread-2001", email="alice@example.com", name="Alice",
                                              subject="Gift wrapping?", text="Can you gift-wrap my next order?"),
                    "A2: Alice, a new email thread")
    say("Alice starts a new email thread -> conversation A2; its context panel lists A as her previous conversation (Q1)")

    print("\nClean-up and the help desk")
    td = story.name(await d.new_ticket(north, dave), "Ticket 4 (from D)")
    await d.command(c.TrashConversation, north, conversation_id=dave)
    await d.wait_event(td, "ticket.deleted")
    say("D goes to the trash: its ticket is deleted, once (S5)")
    k = story.name(await d.new_conversation(contoso, thread="contoso-88", email="kim@contoso.example", name="Kim",
                                             subject="Invoice question", text="Why two invoices?"),
                   "K: Kim at Contoso, email")
    tk = story.name(await d.new_ticket(contoso, k), "Ticket 5 (Contoso, from K)")
    await d.wait_event(k, "conversation.moved_to_help_desk")
    say("Contoso (Professional, created after 2024-04-01) creates a ticket: ticket and conversation move to the help desk (T8)")
    inbox_edit = await d.command(c.ChangeTicketOwner, contoso, ticket_id=tk, owner_id="ann")
    await d.rejection(inbox_edit)
    say("managing that ticket from the inbox is rejected (T8)")

    print("\nBad input")
    await d.publish_raw(d.settings.topic(INBOUND_MESSAGES), b"garbage", b"<html>not json</html>")
    stranger = d.inbound("no-such-account")
    await d.publish_raw(d.settings.topic(INBOUND_MESSAGES), b"stranger", stranger.model_dump_json().encode())
    await d.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER), count=2, what="two dead letters")
    say("a gateway publishes bytes that are not JSON, and a message for an unknown account: both dead-lettered (X4)")
    await d.settle()

    await _check(d, story, north, a, b, w, dave, k, ta, tb, tw, td, tk, first, second, unlink, bad_edit, inbox_edit)
    panel = await conversation_context(d.engine, a2)
    assert panel is not None
    story.check("Q1", [p["id"] for p in panel["previous_conversations"]] == [a] and panel["contact"]["name"] == "Alice",
                "A2's context shows Alice and her previous conversation A")
    panel_a = await conversation_context(d.engine, a)
    assert panel_a is not None and panel_a["ticket"] is not None
    story.check("Q2", panel_a["ticket"]["card"]["read_only"] and panel_a["ticket"]["card"]["properties"]["owner_id"] == "chen",
                "A's context shows ticket 1 on the fixed, read-only card")


async def _check(d: Driver, story: Story, north: str, a: str, b: str, w: str, dave: str, k: str, ta: str, tb: str,
                 tw: str, td: str, tk: str, first: Any, second: str, unlink: str, bad_edit: str, inbox_edit: str) -> None:
    conv = {x: await d.conversation(x) for x in (a, b, w, dave, k)}
    tick = {x: await d.ticket(x) for x in (ta, tb, tw, td, tk)}
    ch = story.check
    ch("C1", len(await d.messages_of(a)) == 4, "Alice's three emails and Ann's reply share conversation A")
    received = [r for r in d.probe.records if r.type == "conversation.message_received"
                and r.body["channel_message_id"] == first.channel_message_id]
    ch("C2", len(received) == 1, "the redelivered email was stored and announced once")
    ch("C3", conv[a].status == "open", "Alice's new message reopened A")
    ch("C4", any(r.type == "outbound.message" and r.body["conversation_id"] == a for r in d.probe.records),
       "Ann's reply was published for the channel")
    ch("T1", tick[ta].pipeline == "support" and tick[ta].source_channel == "email", "ticket 1 took its defaults")
    ch("T2", (await d.rejection(second))["reason"] == "conversation_already_has_ticket", "second ticket for A rejected")
    ch("T3", (await d.rejection(unlink))["reason"] == "association_immutable", "unlinking rejected")
    t4 = await d.rejection(bad_edit)
    ch("T4", set(t4["names"]) == {"colour", "priority"}, f"bad edit rejected naming {t4['names']}")
    ch("T6/S3/S4", tick[ta].owner_id == "chen" and conv[a].owner_id == "bruno",
       "ticket 1 is Chen's, conversation A stays Bruno's")
    ch("T9", tick[tb].merged_into == ta, "ticket 2 merged into ticket 1")
    ch("S1", any(r.type == "conversation.closed" and r.key == b for r in d.probe.records), "closing ticket 1 closed B")
    ch("S2", conv[b].status == "closed" and tick[ta].state == "OPEN", "reopening ticket 1 (two conversations) reopened none")
    ch("S2", "conversation.reopened" in d.types(w), "reopening ticket 3 (one conversation) reopened W")
    ch("C6/S6", conv[w].status == "closed" and tick[tw].state == "OPEN", "closing W left ticket 3 open")
    ch("S5/T7", conv[dave].deleted and tick[td].deleted and d.types(td).count("ticket.deleted") == 1,
       "trashing D deleted ticket 4 once")
    ch("T8", tick[tk].workspace == Workspace.HELP_DESK.value and conv[k].workspace == Workspace.HELP_DESK.value,
       "Contoso's ticket and conversation are in the help desk")
    ch("T8", (await d.rejection(inbox_edit))["reason"] == "help_desk_required", "inbox management rejected for Contoso")
    dead = [r.headers.get("dlq_reason") for r in d.probe.records if r.topic.endswith(DEADLETTER)]
    ch("X4", sorted(dead) == ["not_json", "unknown_account"], f"dead letters with reasons {sorted(dead)}")


def report(d: Driver, story: Story, conversations: list[Any], tickets: list[Any]) -> None:
    print("\n=== Conversations ===")
    for row in conversations:
        state = "TRASHED" if row.deleted else row.status
        print(f"\n{story.label(row.id)}  [{row.id[:8]}]")
        print(f"  {row.channel}, {state}, owner {row.owner_id or '-'}, {row.workspace}")
        for ev in d.events(row.id):
            print(f"    v{ev.body.get('version')}: {_describe(story, ev.body)}")
    print("\n=== Tickets ===")
    for row in tickets:
        merged = f"merged into {story.label(row.merged_into)}" if row.merged_into else ""
        state = "DELETED" if row.deleted else (merged or f"{row.status} ({row.state})")
        print(f"\n{story.label(row.id)}  [{row.id[:8]}]")
        print(f"  {row.subject!r}, {state}, owner {row.owner_id or '-'}, {row.workspace}, priority {row.priority or '-'}")
        for ev in d.events(row.id):
            print(f"    v{ev.body.get('version')}: {_describe(story, ev.body)}")
    print("\n=== Rejected commands (X2) ===")
    for r in d.probe.records:
        if r.type == "command.rejected":
            body = r.body
            print(f"  {body['command_type']}: {body['reason']} - {body['detail']}")
    print("\n=== Dead letters (X4) ===")
    for r in d.probe.records:
        if r.topic.endswith(DEADLETTER):
            print(f"  from {r.headers.get('dlq_original_topic')}: {r.headers.get('dlq_reason')} - "
                  f"{r.headers.get('dlq_detail', '')[:100]}")


def _describe(story: Story, body: dict[str, Any]) -> str:
    kind = body["type"]
    if kind.endswith("owner_changed"):
        return f"{kind} {body.get('previous_owner_id') or '-'} -> {body.get('owner_id') or '-'}"
    if kind == "conversation.message_received":
        return f"{kind}: {body['text']!r}"
    if kind == "conversation.message_sent":
        return f"{kind} by {body.get('author_id')}: {body['text']!r}"
    if kind == "conversation.reopened":
        return f"{kind} ({body['cause']})"
    if kind == "ticket.status_changed":
        return f"{kind} {body['previous_status']} -> {body['status']} ({body['state']})"
    if kind == "ticket.merged":
        return f"{kind} into {story.label(body['into_ticket_id'])}"
    if kind == "ticket.conversation_associated":
        return f"{kind}: {story.label(body['conversation_id'])}"
    if kind == "ticket.created":
        convs = ", ".join(story.label(x) for x in body["conversation_ids"])
        return f"{kind} for {convs} (owner {body['owner_id'] or '-'}, {body['workspace']})"
    return kind


async def run_demo(settings: Settings, keep_topics: bool = False) -> int:
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:4]
    prefix = f"{settings.topic_prefix}run-{stamp}."
    database_url = settings.database_url
    if database_url.startswith("sqlite"):  # a fresh file per run, kept for `ticketflow context`
        path = run_dir() / "demo" / f"ticketflow-{stamp}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite+aiosqlite:///{path}"
    s = settings.model_copy(update=dict(topic_prefix=prefix, database_url=database_url))
    started = time.monotonic()
    print(f"Ticketflow demo: Kafka at {s.bootstrap_servers}, topics '{prefix}*', database {database_url}")
    applied = await apply_topics(s)
    if not applied.ok:
        raise RuntimeError("topics apply failed: " + "; ".join(applied.lines()))
    workers = await start_workers(s)
    probe = Probe(s.bootstrap_servers, [s.topic(t) for t in WATCHED])
    await probe.start()
    engine = create_engine(s.database_url, writer=False)
    d = Driver(s, engine, probe)
    story = Story()
    try:
        await play(d, story)
        accounts = [k for k, v in story.names.items() if v.startswith(("Northwind", "Contoso"))]
        convs = [row for acc in accounts for row in await d.conversations_of(acc)]
        tickets = [row for acc in accounts for row in await d.tickets_of(acc)]
        report(d, story, convs, tickets)
    finally:
        await probe.stop()
        await stop_workers(workers)
        await engine.dispose()
        if not keep_topics:
            await delete_topics_under(s.bootstrap_servers, prefix)
    print("\n=== Checks ===")
    for rule, ok, what in story.checks:
        print(f"  [{'ok' if ok else 'FAIL'}] {rule}: {what}")
    failed = [c for c in story.checks if not c[1]]
    alice = next((k for k, v in story.names.items() if v.startswith("A: ")), "<conversation-id>")
    print(f"\n{len(story.checks) - len(failed)} of {len(story.checks)} checks hold; took {time.monotonic() - started:.1f}s.")
    print(f"Alice's context panel (Q1/Q2): DATABASE_URL={database_url} .venv/bin/ticketflow context {alice}")
    return 1 if failed else 0


def _library_logs(verbose: int) -> Path | None:
    """Where the libraries' log lines go: with -v to stderr (-vv: DEBUG), else to a file named at the end,
    so the story on stdout is not interleaved with the brokers' start-up chatter and expected warnings
    (a fresh broker's GroupCoordinatorNotAvailableError, the dead letters the story provokes)."""
    if verbose:
        configure_logging(level_for(verbose), force=True)
        return None
    path = run_dir() / "demo" / f"demo-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    configure_logging(logging.INFO, stream=path.open("a", encoding="utf-8"), force=True)
    return path


def main(argv: list[str] | None = None) -> int:
    """`python -m tools.demo [--keep-topics] [-v]` (what `scripts/demo.sh` runs)."""
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description="A day in a support inbox, on the "
                                     "local broker and the embedded SQLite database, with checks.")
    parser.add_argument("--keep-topics", action="store_true", help="keep this run's topics to inspect them with kcat")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="library logs on stderr (-v INFO, -vv DEBUG) instead of a log file")
    args = parser.parse_args(argv)
    log_file = _library_logs(args.verbose)
    for worker in ("inbound", "ticketing", "sync"):
        logging.getLogger(f"ticketflow.{worker}.faststream").setLevel(logging.ERROR)
    try:
        return asyncio.run(run_demo(Settings.from_env(), keep_topics=args.keep_topics))
    finally:
        if log_file is not None:
            print(f"Library logs of this run (expected warnings included): {log_file}")


if __name__ == "__main__":
    sys.exit(main())
