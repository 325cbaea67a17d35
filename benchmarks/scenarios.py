"""The scenarios. Each one gets its own topic prefix (the whole catalogue, 6 partitions on the main
topics, provisioned with `ticketflow topics apply`) and its own fresh database, runs the workers as
separate processes (`python -m ticketflow.cli worker NAME`), measures from outside, and removes its
topics, consumer groups and database afterwards.

    raw, faststream, faststream-batch   passthrough reference points (benchmarks/passthrough.py)
    inbound-pg, inbound-sqlite          backlog drain of N inbound messages by one inbound worker
    inbound-pg-2proc                    the same with two inbound worker processes
    ticket-pg                           backlog drain of N ticket commands by one ticketing worker
    latency                             open-loop load at 25/50/75% of inbound-pg's rate, three workers
    stored-1m                           inbound-pg on a database already holding 1M messages
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import data, stages
from benchmarks.db import STORED_MARKER, Database, fill_stored, stored_account_ids
from benchmarks.events import Collector, WaitedTooLong, count_types
from benchmarks.kafkaops import Broker, Drain, produce, wait_stable, watch_drain
from benchmarks.procs import CpuTimes, Proc, cpu_by_part, machine_busy, part_shares, shares, spawn, stop
from benchmarks.procs import run as run_python
from contracts.topics import (
    ACCOUNTS,
    CONVERSATION_EVENTS,
    DEADLETTER,
    INBOUND_MESSAGES,
    REJECTIONS,
    TICKET_COMMANDS,
    TICKET_EVENTS,
)
from tools.ports import free_port
from workers.settings import Settings

INBOUND_GROUP = "ticketflow.inbound.messages"
TICKETING_GROUP = "ticketflow.ticketing.commands"


@dataclass
class Result:
    scenario: str
    kind: str  # drain | latency
    status: str  # ok | capped | failed | skipped
    procs: int = 0
    messages: int = 0
    seconds: float | None = None
    rate: float | None = None
    ratio: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None
    samples: int | None = None
    cpu_ms_per_msg: float | None = None
    peak_rss_mb: float | None = None
    busy_percent: float | None = None
    """How busy the whole machine was (all cores, every process) in the measured window."""
    stolen_percent: float | None = None
    """How much of the machine's time the hypervisor gave to other tenants in the window (steal)."""
    processes: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Options:
    messages: int
    pass_messages: int
    seconds: float
    cap: float
    accounts: int
    stored_rows: int
    keep_db: str | None
    max_rate: float | None
    out_dir: Path
    profile: bool = False


class Run:
    """One benchmark run: settings from the environment, one broker connection, the results so far."""

    def __init__(self, run_id: str, options: Options, base: Settings, admin_url: str, say: Callable[[str], None]) -> None:
        self.id = run_id
        self.o = options
        self.base = base
        self.admin_url = admin_url
        self.say = say
        self.broker = Broker(base.kafka)
        self.results: list[Result] = []

    def result(self, name: str) -> Result | None:
        return next((r for r in self.results if r.scenario == name and r.status in ("ok", "capped")), None)


class Scenario:
    """A scenario's namespace: topic prefix, database, processes; all removed on exit."""

    def __init__(self, run: Run, name: str) -> None:
        self.run = run
        self.name = name
        self.prefix = f"bench-{run.id}-{name}."
        self.procs: list[Proc] = []
        self._busy_at_mark: CpuTimes | None = None
        self._parts_at_mark: dict[str, float] = {}
        self.db: Database | None = None
        self.logs = run.o.out_dir / name

    def topic(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def group(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({"KAFKA_BOOTSTRAP_SERVERS": self.run.base.bootstrap_servers, "TICKETFLOW_TOPIC_PREFIX": self.prefix,
                    "PYTHONUNBUFFERED": "1"})
        if self.db is not None:
            env["DATABASE_URL"] = self.db.url
        return env

    async def __aenter__(self) -> Scenario:
        self.run.say(f"[{self.name}] topics {self.prefix}*")
        await run_python(["-m", "ticketflow.cli", "topics", "apply"], self.env(), self.logs / "topics.log")
        return self

    async def __aexit__(self, *exc: object) -> None:
        for proc in self.procs:
            await stop(proc)
        try:
            await self.run.broker.delete_prefix(self.prefix)
        except Exception as error:
            self.run.say(f"[{self.name}] WARNING: could not delete the topics {self.prefix}*: {error!r}")
        if self.db is not None:
            try:
                await self.db.drop()
            except Exception as error:
                self.run.say(f"[{self.name}] WARNING: could not drop database {self.db.name}: {error!r}")

    async def database(self, kind: str) -> Database:
        name = re.sub(r"[^a-z0-9_]", "_", f"bench_{self.run.id}_{self.name}".lower())
        self.db = await Database.fresh(kind, name, self.run.admin_url, self.run.o.out_dir / "db")
        await self.migrate()
        return self.db

    async def migrate(self) -> None:
        await run_python(["-m", "ticketflow.cli", "migrate"], self.env(), self.logs / "migrate.log", timeout=300)

    async def accounts(self, ids: list[str]) -> None:
        await produce(self.run.base.kafka, self.topic(ACCOUNTS), data.account_records(ids))

    async def worker(self, name: str, tag: str = "", http_port: int | None = None) -> Proc:
        env = self.env()
        if http_port is not None:  # its /metrics, for the stage figures
            env |= {"TICKETFLOW_HTTP_PORT": str(http_port), "TICKETFLOW_HTTP_HOST": "127.0.0.1"}
        proc = await spawn(f"{name}{tag}", ["-m", "ticketflow.cli", "worker", name], env,
                           self.logs / f"worker-{name}{tag}.log")
        self.procs.append(proc)
        return proc

    async def python(self, name: str, args: list[str]) -> Proc:
        proc = await spawn(name, args, self.env(), self.logs / f"{name}.log")
        self.procs.append(proc)
        return proc

    def dead(self) -> str | None:
        for proc in self.procs:
            if not proc.alive():
                return f"{proc.name} exited {proc.process.returncode}: {proc.tail(5)}"
        return None

    def mark(self) -> None:
        self._busy_at_mark = machine_busy()
        self._parts_at_mark = cpu_by_part({proc.pid for proc in self.procs})
        for proc in self.procs:
            proc.mark(self.logs / f"profile-{proc.name}.txt" if self.run.o.profile else None)

    def machine_parts(self) -> dict[str, float]:
        """Where the machine's CPU went since the last `mark`: the workers (relay processes included), the
        broker, PostgreSQL, this benchmark, other; in % of all cores ({} before a mark)."""
        if self._busy_at_mark is None:
            return {}
        return part_shares(self._parts_at_mark, cpu_by_part({proc.pid for proc in self.procs}),
                           self._busy_at_mark, machine_busy())

    def machine_shares(self) -> tuple[float | None, float | None]:
        """The machine's (busy %, stolen %) since the last `mark` (None before one)."""
        if self._busy_at_mark is None:
            return None, None
        return shares(self._busy_at_mark, machine_busy())

    def sample(self, procs: list[Proc] | None = None) -> tuple[float, float, list[dict[str, Any]]]:
        """(CPU seconds in the window, largest peak RSS MB, per-process summaries) of `procs` (default all)."""
        chosen = self.procs if procs is None else procs
        for proc in chosen:
            proc.sample()
        cpu = sum(p.cpu_window or 0.0 for p in chosen)
        return cpu, max((p.peak_rss_kb / 1024 for p in chosen), default=0.0), [p.summary() for p in chosen]

    async def deadletters(self) -> int:
        parts = await self.run.broker.partitions(self.topic(DEADLETTER))
        return await self.run.broker.end_total(parts)

    async def settle(self, timeout: float) -> None:
        """Every consumer group of this prefix at the end of its partitions and the outbox empty, twice in a row."""
        broker = self.run.broker
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise WaitedTooLong(f"[{self.name}] workers did not settle within {timeout:.0f}s")
            if dead := self.dead():
                raise RuntimeError(dead)
            lag = 0
            for group, *_ in await broker.admin.list_consumer_groups():
                if not group.startswith(self.prefix):
                    continue
                offsets = await broker.admin.list_consumer_group_offsets(group)
                parts = [tp for tp, m in offsets.items() if m is not None and m.offset >= 0]
                ends = await broker.offsets.end_offsets(parts) if parts else {}
                lag += sum(max(0, ends[tp] - offsets[tp].offset) for tp in parts)
            unsent = await self.db.outbox_unsent() if self.db is not None else 0
            quiet = quiet + 1 if lag == 0 and not unsent else 0
            await asyncio.sleep(0.3)


def _drain_result(name: str, procs: int, drain: Drain, cpu: float, rss: float, summaries: list[dict[str, Any]],
                  note: str, details: dict[str, Any], busy: tuple[float | None, float | None]) -> Result:
    details = {"backlog": drain.backlog, "measured": drain.measured, "wall_seconds_from_spawn": round(drain.wall_seconds, 2),
               "window_starts_at": drain.start_by, **details}
    notes = "; ".join(x for x in (drain.note, note) if x)
    return Result(name, "drain", drain.status, procs, drain.backlog, round(drain.seconds, 3), round(drain.rate, 1),
                  cpu_ms_per_msg=round(cpu * 1000 / drain.measured, 3) if drain.measured else None,
                  peak_rss_mb=round(rss, 1), busy_percent=busy[0], stolen_percent=busy[1], processes=summaries,
                  note=notes, details=details)


# ------------------------------------------------------------------ passthrough

async def passthrough(run: Run, kind: str) -> Result:
    async with Scenario(run, kind) as sc:
        n = run.o.pass_messages
        src, dst = sc.topic(INBOUND_MESSAGES), sc.topic(CONVERSATION_EVENTS)
        inputs = data.inbound_set(run.id + kind, data.account_ids(run.id, run.o.accounts), n, tag=kind)
        preload = await produce(run.base.kafka, src, inputs.records)
        run.say(f"[{kind}] {n} records preloaded in {preload:.1f}s; draining with one {kind} process")
        parts = await run.broker.partitions(src)
        group = sc.group(f"bench.{kind}")
        spawned = time.monotonic()
        await sc.python(kind, ["-m", "benchmarks.passthrough", kind, src, dst, group])
        drain = await watch_drain(run.broker, group, parts, 1, spawned, run.o.cap, sc.mark, alive=sc.dead)
        cpu, rss, summaries = sc.sample()
        window = sc.machine_shares()
        copied = await run.broker.end_total(await run.broker.partitions(dst))
        note = "" if copied >= n else f"only {copied}/{n} records reached {dst}"
        return _drain_result(kind, 1, drain, cpu, rss, summaries, note,
                             {"preload_seconds": round(preload, 2), "copied": copied,
                              "machine_parts": sc.machine_parts()}, window)


# ------------------------------------------------------------------ inbound drain

async def inbound_drain(run: Run, name: str, kind: str, processes: int = 1, stored: Database | None = None,
                        warm: bool = False) -> Result:
    """N inbound messages preloaded, then the worker process(es) started; the window opens when they are
    in the group (see watch_drain). `warm`: the processes start first, and once all of them are in the
    group (Stable) the N messages are sent as fast as the producer goes: the window opens at the first
    send (how 1 and 2 processes are compared: with a backlog waiting, the first process would drain part
    of it alone while the second one joins)."""
    async with Scenario(run, name) as sc:
        if stored is None:
            db = await sc.database(kind)
            accounts = data.account_ids(run.id, run.o.accounts)
        else:
            sc.db = db = stored
            await sc.migrate()
            accounts = stored_account_ids()
        await sc.accounts(accounts)
        n = run.o.messages
        inputs = data.inbound_set(run.id + name, accounts, n, tag=f"{name}-{run.id}")
        topic = sc.topic(INBOUND_MESSAGES)
        if not warm:
            preload = await produce(run.base.kafka, topic, inputs.records)
            run.say(f"[{name}] {n} inbound messages ({inputs.threads_started} threads) preloaded in {preload:.1f}s; "
                    f"draining with {processes} inbound worker process(es) on {kind}")
        parts = await run.broker.partitions(topic)
        events = await run.broker.partitions(sc.topic(CONVERSATION_EVENTS))
        before = await db.counts(("messages",)) if stored is not None else {}
        outbox_checked = await db.outbox_unsent() is not None

        async def done() -> bool:
            unsent = await db.outbox_unsent()
            return (unsent == 0 or unsent is None) and await run.broker.end_total(events) >= n

        wal_before = await db.wal_position()
        spawned = time.monotonic()
        for i in range(processes):
            await sc.worker("inbound", f"-{i + 1}" if processes > 1 else "")
        started = None
        if warm:
            await wait_stable(run.broker, sc.group(INBOUND_GROUP), processes, run.o.cap, alive=sc.dead)
            run.say(f"[{name}] {processes} inbound worker process(es) in the group on {kind}; sending {n} inbound "
                    f"messages ({inputs.threads_started} threads)")
            sc.mark()
            started = time.monotonic()
            preload = await produce(run.base.kafka, topic, inputs.records)
        drain = await watch_drain(run.broker, sc.group(INBOUND_GROUP), parts, processes, spawned, run.o.cap, sc.mark,
                                  done=done, alive=sc.dead, interval=0.05, started=started)
        cpu, rss, summaries = sc.sample()
        window = sc.machine_shares()
        details: dict[str, Any] = {"preload_seconds": round(preload, 2), "threads": inputs.threads_started,
                                   "database": db.kind, "outbox_checked": outbox_checked,
                                   "machine_parts": sc.machine_parts()}
        notes = []
        if drain.status == "ok":
            types = await count_types(run.base.kafka, [sc.topic(CONVERSATION_EVENTS)])
            received, created = types.get("conversation.message_received", 0), types.get("conversation.created", 0)
            details |= {"events": types, "deadletters": await sc.deadletters(), "db_size_mb": await db.size_mb()}
            wal_after = await db.wal_position()
            if wal_before is not None and wal_after is not None:
                # what the drain cost the database's disk (and any replica it streams to)
                details["wal_bytes_per_message"] = round((wal_after - wal_before) / n)
            if received != n:
                notes.append(f"{received} message_received events for {n} messages")
            if created != inputs.threads_started:
                notes.append(f"{created} conversation.created for {inputs.threads_started} new threads")
            if details["deadletters"]:
                notes.append(f"{details['deadletters']} dead letters")
            if stored is not None:
                details["messages_stored_before"] = before.get("messages")
        return _drain_result(name, processes, drain, cpu, rss, summaries, "; ".join(notes), details, window)


async def stored_1m(run: Run) -> Result:
    rows = run.o.stored_rows
    name = run.o.keep_db or f"bench_{run.id}_stored"
    marker = STORED_MARKER.format(rows=rows)
    if run.o.keep_db:
        db, comment = await Database.existing(name, run.admin_url)
        if comment != marker:
            run.say(f"[stored-1m] database {name} is not prepared for {rows:,} messages ({comment!r}): recreating it")
            db = await Database.fresh("postgresql", name, run.admin_url, run.o.out_dir / "db")
            db.keep = True
            comment = None
    else:
        db = await Database.fresh("postgresql", name, run.admin_url, run.o.out_dir / "db")
        comment = None
    prep: dict[str, Any] = {"database": name, "kept": bool(run.o.keep_db), "reused": comment == marker}
    try:
        env = {**os.environ, "DATABASE_URL": db.url}
        await run_python(["-m", "ticketflow.cli", "migrate"], env, run.o.out_dir / "stored-1m" / "migrate.log", timeout=300)
        if comment != marker:
            run.say(f"[stored-1m] copying {rows:,} messages into {name} (COPY; this takes a while)")
            started = time.monotonic()
            prep |= await fill_stored(db, rows, run.say)
            prep["fill_seconds"] = round(time.monotonic() - started, 1)
        prep["db_size_mb_before"] = await db.size_mb()
        result = await inbound_drain(run, "stored-1m", "postgresql", stored=db)
    finally:
        await db.drop()  # kept when --keep-db
    result.details["stored"] = prep
    empty = run.result("inbound-pg")
    if empty is not None and empty.rate and result.rate:
        result.details["vs_empty"] = round(result.rate / empty.rate, 3)
        result.note = "; ".join(x for x in (result.note, f"{result.rate / empty.rate:.2f}x the empty database") if x)
    return result


# ------------------------------------------------------------------ ticket commands

async def _conversations(run: Run, sc: Scenario, collector: Collector, count: int, tag: str,
                         accounts: list[str], thread_accounts: list[str] | None = None) -> list[tuple[str, str]]:
    """`count` new conversations through the inbound worker: [(conversation, account)] in order."""
    inputs = data.inbound_set(run.id + tag, accounts, count, tag=tag, one_each=True, thread_accounts=thread_accounts)
    already = collector.counts["conversation.created"]
    await produce(run.base.kafka, sc.topic(INBOUND_MESSAGES), inputs.records)
    await collector.wait_count("conversation.created", already + count, run.o.cap, "(setup conversations)")
    by_thread = {(b["account_id"], b["channel"], b["channel_thread_key"]): b["conversation_id"]
                 for b in collector.bodies["conversation.created"]}
    return [(by_thread[k], k[0]) for k in inputs.thread_keys]


async def _tickets(run: Run, sc: Scenario, collector: Collector, convs: list[tuple[str, str]], tag: str) -> dict[str, str]:
    """A ticket for each conversation, through the ticketing worker: {conversation: ticket}."""
    already = collector.counts["ticket.created"]
    records = [data.create_ticket(run.id + tag, i, account, conv, f"Ticket {i}") for i, (conv, account) in enumerate(convs)]
    await produce(run.base.kafka, sc.topic(TICKET_COMMANDS), records)
    await collector.wait_count("ticket.created", already + len(convs), run.o.cap, "(setup tickets)")
    _no_rejections(collector)
    return {b["conversation_ids"][0]: b["ticket_id"] for b in collector.bodies["ticket.created"]}


def _no_rejections(collector: Collector) -> None:
    if collector.counts["command.rejected"]:
        bodies = collector.bodies.get("command.rejected", [])[:3]
        raise RuntimeError(f"setup commands were rejected: {[(b.get('reason'), b.get('detail')) for b in bodies]}")


async def ticket_drain(run: Run) -> Result:
    name = "ticket-pg"
    async with Scenario(run, name) as sc:
        await sc.database("postgresql")
        accounts = data.account_ids(run.id, run.o.accounts)
        await sc.accounts(accounts)
        n = run.o.messages
        existing = max(1, n // 10)
        creates = max(1, n // 5)
        updates = n - creates
        collector = Collector(run.base.kafka, [sc.topic(CONVERSATION_EVENTS), sc.topic(TICKET_EVENTS), sc.topic(REJECTIONS)])
        collector.keep("conversation.created", "ticket.created", "command.rejected")
        await collector.start()
        try:
            run.say(f"[{name}] setup: {existing + creates} conversations and {existing} tickets through "
                    "the inbound and ticketing workers")
            await sc.worker("inbound")
            await sc.worker("ticketing", "-setup")
            convs = await _conversations(run, sc, collector, existing + creates, "tk", accounts)
            tickets = await _tickets(run, sc, collector, convs[:existing], "tk-setup")
            await sc.settle(run.o.cap)
        finally:
            await collector.stop()
        for proc in list(sc.procs):
            await stop(proc)
            sc.procs.remove(proc)
        account_of = dict(convs)
        pairs = [(tickets[c], account_of[c]) for c, _a in convs[:existing]]
        news = [data.create_ticket(run.id, 10_000_000 + i, a, c, f"New ticket {i}")
                for i, (c, a) in enumerate(convs[existing:])]
        changes = data.ticket_updates(run.id, pairs, updates)
        mixed: list[data.Record] = []
        step = max(1, len(changes) // max(1, len(news)))
        for i, change in enumerate(changes):  # creates spread among the changes; each ticket's changes in order
            if i % step == 0 and news:
                mixed.append(news.pop())
            mixed.append(change)
        mixed += news
        topic = sc.topic(TICKET_COMMANDS)
        preload = await produce(run.base.kafka, topic, mixed)
        run.say(f"[{name}] {len(mixed)} ticket commands ({creates} create_ticket, {updates} status/owner changes on "
                f"{existing} tickets) preloaded in {preload:.1f}s; draining with one ticketing worker")
        parts = await run.broker.partitions(topic)
        rejections = await run.broker.partitions(sc.topic(REJECTIONS))
        rejected_before = await run.broker.end_total(rejections)
        db = sc.db
        assert db is not None

        async def done() -> bool:
            unsent = await db.outbox_unsent()
            return unsent == 0 or unsent is None

        spawned = time.monotonic()
        await sc.worker("ticketing")
        drain = await watch_drain(run.broker, sc.group(TICKETING_GROUP), parts, 1, spawned, run.o.cap, sc.mark,
                                  done=done, alive=sc.dead, interval=0.05)
        cpu, rss, summaries = sc.sample(sc.procs[-1:])
        window = sc.machine_shares()
        details: dict[str, Any] = {"preload_seconds": round(preload, 2), "creates": creates, "changes": updates,
                                   "tickets_before": existing, "machine_parts": sc.machine_parts()}
        note = ""
        if drain.status == "ok":
            rejected = await run.broker.end_total(rejections) - rejected_before
            details |= {"ticket_events": await count_types(run.base.kafka, [sc.topic(TICKET_EVENTS)]),
                        "rejections": rejected, "deadletters": await sc.deadletters()}
            if rejected:
                note = f"{rejected} commands rejected"
        return _drain_result(name, 1, drain, cpu, rss, summaries, note, details, window)


# ------------------------------------------------------------------ latency

def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Latencies:
    """Scheduled send times of what is in flight, and the latencies of what arrived."""

    def __init__(self) -> None:
        self.inbound: dict[str, float] = {}
        self.closes: dict[str, float] = {}
        self.open_convs: dict[str, set[str]] = {}
        self.ticket_of: dict[str, str] = {}
        self.inbound_ms: list[float] = []
        self.close_ms: list[float] = []

    def received(self, body: dict[str, Any], seen: float) -> None:
        scheduled = self.inbound.pop(body.get("channel_message_id", ""), None)
        if scheduled is not None:
            self.inbound_ms.append((seen - scheduled) * 1000)

    def closed(self, body: dict[str, Any], seen: float) -> None:
        ticket = self.ticket_of.get(body.get("conversation_id", ""))
        if ticket is None or ticket not in self.closes:
            return
        remaining = self.open_convs[ticket]
        remaining.discard(body["conversation_id"])
        if not remaining:
            self.close_ms.append((seen - self.closes.pop(ticket)) * 1000)


async def open_loop(run: Run, kafka_topic_in: str, kafka_topic_cmd: str,
                    schedule: list[tuple[float, str, data.Record, str | None]], lat: Latencies) -> tuple[float, float]:
    """Send each record at its scheduled offset from now (never waiting for the previous one's outcome);
    the latency clock of a record starts at its scheduled time, so a late sender does not hide delay.
    Returns (start, seconds until the last send)."""
    producer = run.base.kafka.producer("bench-open-loop")
    await producer.start()
    pending: list[Awaitable[Any]] = []
    try:
        t0 = time.monotonic() + 0.2
        for offset, kind, record, ident in schedule:
            due = t0 + offset
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if kind == "inbound":
                assert ident is not None
                lat.inbound[ident] = due
                topic = kafka_topic_in
            else:
                assert ident is not None
                lat.closes[ident] = due
                topic = kafka_topic_cmd
            pending.append(await producer.send(topic, key=record.key, value=record.value, headers=record.headers))
        last = time.monotonic()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return t0, last - t0


async def latency(run: Run) -> list[Result]:
    base = run.result("inbound-pg")
    max_rate = run.o.max_rate or (base.rate if base is not None else None)
    if not max_rate:
        return [Result("latency", "latency", "skipped", note="no inbound-pg rate in this run and no --max-rate")]
    fractions = (0.25, 0.50, 0.75)
    seconds = run.o.seconds
    rates = [max_rate * f for f in fractions]
    close_rates = [min(max(1.0, 0.1 * r), 20.0) for r in rates]
    closes_per_step = [max(1, math.floor(c * seconds)) for c in close_rates]
    tickets_needed = sum(closes_per_step)
    doubles = tickets_needed // 5  # one ticket in five has a second conversation (T10)
    results: list[Result] = []
    async with Scenario(run, "latency") as sc:
        await sc.database("postgresql")
        accounts = data.account_ids(run.id, run.o.accounts)
        await sc.accounts(accounts)
        ports = {worker: free_port() for worker in ("inbound", "ticketing", "sync")}
        for worker, port in ports.items():
            await sc.worker(worker, http_port=port)
        collector = Collector(run.base.kafka, [sc.topic(CONVERSATION_EVENTS), sc.topic(TICKET_EVENTS), sc.topic(REJECTIONS)])
        collector.keep("conversation.created", "ticket.created", "command.rejected")
        lat = Latencies()
        collector.on("conversation.message_received", lat.received)
        collector.on("conversation.closed", lat.closed)
        await collector.start()
        try:
            run.say(f"[latency] setup: {tickets_needed} tickets ({doubles} with two conversations), three workers")
            convs = await _conversations(run, sc, collector, tickets_needed, "lts", accounts)
            # the second conversations: same accounts as the first `doubles` tickets' (T10 stays in an account)
            extras = await _conversations(run, sc, collector, doubles, "ltx", accounts,
                                          thread_accounts=[a for _c, a in convs[:doubles]]) if doubles else []
            tickets = await _tickets(run, sc, collector, convs, "lts")
            already = collector.counts["ticket.conversation_associated"]
            assoc = []
            for i in range(doubles):
                conv, account = convs[i]
                extra = extras[i][0]
                assoc.append(data.associate(run.id, i, tickets[conv], account, extra))
                lat.ticket_of[extra] = tickets[conv]
            run.say(f"[latency] setup: {len(tickets)} tickets created; associating {doubles} second conversations")
            await produce(run.base.kafka, sc.topic(TICKET_COMMANDS), assoc)
            await collector.wait_count("ticket.conversation_associated", already + doubles, run.o.cap, "(setup)")
            _no_rejections(collector)
            run.say("[latency] setup: waiting for the workers to settle")
            await sc.settle(run.o.cap)
            ticket_list = [(tickets[c], a, c) for c, a in convs[:tickets_needed]]
            for t, _a, c in ticket_list:
                lat.ticket_of[c] = t
            convs_of: dict[str, set[str]] = {}
            for c, t in lat.ticket_of.items():
                convs_of.setdefault(t, set()).add(c)
            used = 0
            for fraction, rate, close_rate, closes in zip(fractions, rates, close_rates, closes_per_step, strict=True):
                label = f"{round(fraction * 100)}%"
                count = max(1, math.floor(rate * seconds))
                inputs = data.inbound_set(run.id + label, accounts, count, seed=int(fraction * 100), tag=f"lt{label[:-1]}")
                schedule: list[tuple[float, str, data.Record, str | None]] = [
                    (i / rate, "inbound", r, mid) for i, (r, mid) in enumerate(zip(inputs.records, inputs.message_ids,
                                                                                   strict=True))]
                for j in range(closes):
                    ticket, account, _c = ticket_list[used]
                    used += 1
                    lat.open_convs[ticket] = set(convs_of[ticket])
                    schedule.append(((j + 0.5) / close_rate, "close", data.close_ticket(run.id, used, ticket, account),
                                     ticket))
                schedule.sort(key=lambda item: item[0])
                lat.inbound_ms, lat.close_ms = [], []
                run.say(f"[latency] {label}: {rate:.1f} inbound msg/s + {close_rate:.1f} ticket closes/s for {seconds:.0f}s")
                sc.mark()
                before = await stages.scrape_all(ports)
                t0, sent_for = await open_loop(run, sc.topic(INBOUND_MESSAGES), sc.topic(TICKET_COMMANDS), schedule, lat)
                grace = max(15.0, seconds)
                deadline = time.monotonic() + grace
                while (lat.inbound or lat.closes) and time.monotonic() < deadline and not sc.dead():
                    await asyncio.sleep(0.1)
                window = time.monotonic() - t0
                where = stages.between(before, await stages.scrape_all(ports))
                run.say(f"[latency] {label} inside the workers (mean/p99 ms): {stages.summary(where)}")
                cpu, rss, summaries = sc.sample()
                busy, stolen = sc.machine_shares()
                parts = sc.machine_parts()
                run.say(f"[latency] {label} the machine's CPU (% of both cores): "
                        + ", ".join(f"{part} {share:.0f}" for part, share in parts.items()))
                lost_in, lost_close = len(lat.inbound), len(lat.closes)
                lat.inbound.clear()
                lat.closes.clear()
                common = {"procs": 3, "cpu_ms_per_msg": round(cpu * 1000 / (count + closes), 3),
                          "peak_rss_mb": round(rss, 1), "busy_percent": busy, "stolen_percent": stolen,
                          "processes": summaries}
                for what, values, sent, lost, target in (("inbound", lat.inbound_ms, count, lost_in, rate),
                                                          ("close", lat.close_ms, closes, lost_close, close_rate)):
                    note = f"{lost} of {sent} not seen within {grace:.0f}s after the last send" if lost else ""
                    results.append(Result(
                        f"latency-{what}@{label}", "latency", "ok" if not lost else "capped", messages=sent,
                        seconds=round(sent_for, 2), rate=round(target, 2),
                        p50_ms=_round(percentile(values, 50)), p99_ms=_round(percentile(values, 99)),
                        p999_ms=_round(percentile(values, 99.9)), max_ms=_round(max(values, default=None)),
                        samples=len(values), note=note,
                        details={"target_rate": round(target, 2),
                                 "achieved_send_rate": round(sent / sent_for, 2) if sent_for else None,
                                 "fraction_of_max": fraction, "max_rate": round(max_rate, 1),
                                 "window_seconds": round(window, 2), "inbound_rate": round(rate, 2),
                                 "close_rate": round(close_rate, 2), "stages": where, "machine_parts": parts},
                        **common))  # type: ignore[arg-type]
                if sc.dead():
                    raise RuntimeError(sc.dead())
        finally:
            await collector.stop()
    return results


async def batch_cost(run: Run) -> list[Result]:
    """The inbound batch path's CPU per batch of 1, 10 and 100 records, in one process, on a fresh
    PostgreSQL database (`benchmarks.batch_cost`)."""
    async with Scenario(run, "batch-cost") as sc:
        await sc.database("postgresql")
        out = sc.logs / "batch-cost.json"
        await run_python(["-m", "benchmarks.batch_cost", "--out", str(out)], sc.env(), sc.logs / "batch-cost.log",
                         timeout=600)
        measured = json.loads(out.read_text())
    results = []
    for size, m in measured.items():
        results.append(Result(
            f"batch-cost@{size}", "drain", "ok", procs=1, messages=m["batches"] * int(size),
            rate=round(int(size) / m["wall_ms_per_batch"] * 1000, 1), cpu_ms_per_msg=m["cpu_ms_per_message"],
            note=f"{m['cpu_ms_per_batch']:.2f} ms CPU, {m['wall_ms_per_batch']:.2f} ms wall per batch of {size}",
            details=m))
    return results


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
