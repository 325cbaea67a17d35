"""The faults, one injector per kind. Each strikes, lifts the fault again (restart, resume, server
back) and returns a `Fault` saying when, on what, and which workers' consumer groups to watch for
recovery (see tests.chaos.monitor).

| kind | what it does |
| --- | --- |
| `kill` | SIGKILL a random worker at a random moment; the supervisor restarts it at once |
| `kill_before_db_commit` | the worker SIGKILLs itself with the transaction written, not committed |
| `kill_after_commit_before_ack` | ... committed, offset not committed (also sync: published, not acked) |
| `kill_after_publish_before_mark_sent` | ... its outbox relay published rows, not marked sent |
| `kill_in_dead_letter` | ... just before, or just after, a dead-letter write (before the ack) |
| `rebalance` | a second replica of a worker starts, takes partitions (waited for), and 2-6 s later is SIGKILLed |
| `pause` | SIGSTOP a worker past its session timeout (10 s), then SIGCONT; half the time a second replica runs and takes over meanwhile (a zombie returns) |
| `broker_restart` | the broker (all three nodes in cluster mode) stopped and started again (down 1-3 s) |
| `broker_outage_long` | the broker down longer than the producers' request timeout (30 s): 35-50 s |
| `leader_kill` | cluster only: SIGKILL the node leading most partitions under acks=all, start it later |
| `pg_stop` | PostgreSQL stopped fast (sessions terminated), started a few seconds later |
| `pg_kill` | the postmaster SIGKILLed (crash recovery on the next start) |
| `db_outage_long` | PostgreSQL down longer than max.poll.interval.ms (300 s; there is no setting for it) |
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from contracts.topics import CONVERSATION_COMMANDS, INBOUND_MESSAGES, TICKET_COMMANDS
from tests.chaos.fleet import WORKERS, Fleet, Proc
from tests.chaos.infra import Kafka, Postgres
from tests.chaos.monitor import Monitor, Sample
from tests.chaos.names import Run
from tests.chaos.traffic import Traffic
from workers.settings import Settings

SESSION_TIMEOUT = Settings().session_timeout_ms / 1000
"""The workers' consumer session timeout (`TICKETFLOW_SESSION_TIMEOUT_MS`, left at its default in a run)."""
MAX_POLL_INTERVAL = 300.0
"""The workers' max.poll.interval.ms (workers/runtime.py); fixed, no setting."""
WORKER_KILLS = ("kill", "kill_before_db_commit", "kill_after_commit_before_ack",
                "kill_after_publish_before_mark_sent", "kill_in_dead_letter")
KINDS = WORKER_KILLS + ("rebalance", "pause", "broker_restart", "leader_kill", "pg_stop", "pg_kill", "db_outage_long",
                        "broker_outage_long")
LONG = ("db_outage_long", "broker_outage_long")
"""Kinds left out of the standard set: each takes minutes (or, for the broker, more than the request timeout)."""
CLUSTER_ONLY = ("leader_kill",)


def standard(kafka: str) -> tuple[str, ...]:
    """Every kind but the long outages, and on a single node every kind it can have."""
    return tuple(k for k in KINDS if k not in LONG and (kafka == "cluster" or k not in CLUSTER_ONLY))


CONSUMERS = {
    "before_db_commit": ("inbound.messages", "inbound.commands", "ticketing.commands"),
    "after_commit_before_ack": ("inbound.messages", "inbound.commands", "ticketing.commands",
                                "ticketing.conversations", "sync.ticket-events", "sync.conversation-events"),
    "after_publish_before_mark_sent": ("inbound", "ticketing"),
    "dead_letter": ("inbound.messages", "inbound.commands", "ticketing.commands"),
}
INPUT_OF = {"inbound.messages": INBOUND_MESSAGES, "inbound.commands": CONVERSATION_COMMANDS,
            "ticketing.commands": TICKET_COMMANDS}


@dataclass
class Fault:
    kind: str
    target: str
    struck: float
    lifted: float | None
    workers: set[str]
    before: Sample | None = None
    detail: str = ""
    recovery: float | None = None
    outcome: str = "injected"

    def as_dict(self, t0: float) -> dict[str, object]:
        return {"kind": self.kind, "target": self.target, "at": round(self.struck - t0, 2),
                "lifted_after": None if self.lifted is None else round(self.lifted - self.struck, 2),
                "recovery": None if self.recovery is None else round(self.recovery, 2),
                "outcome": self.outcome, "detail": self.detail}


@dataclass
class Context:
    run: Run
    fleet: Fleet
    kafka: Kafka
    postgres: Postgres
    monitor: Monitor
    traffic: Traffic
    rng: random.Random
    pg_down: bool = False
    broker_down: bool = False
    """A server down at this moment: the teardown starts it again before stopping everything."""

    async def snapshot(self, timeout: float = 60.0) -> Sample | None:
        """Offsets now (waits for a broker that is coming back)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return await asyncio.wait_for(self.monitor.sample(), 10)
            except Exception:  # broker not answering yet
                await asyncio.sleep(0.5)
        return None


Injector = Callable[[Context], Awaitable[Fault]]


async def kill(ctx: Context) -> Fault:
    name = ctx.rng.choice(WORKERS)
    proc = ctx.fleet.get(name) or await ctx.fleet.restarted(name, 0)
    assert proc is not None, f"no {name} worker running"
    await asyncio.sleep(ctx.rng.uniform(0, 2))
    died = await ctx.fleet.kill(proc)
    return await _restarted(ctx, "kill", name, died, {name}, f"pid {proc.pid}")


async def _restarted(ctx: Context, kind: str, name: str, died: float, workers: set[str], detail: str) -> Fault:
    """The fault as struck at `died`, lifted when the supervisor restarted the worker (within ~0.1 s; the
    dead process started long before `died - 1`, so it cannot be mistaken for its successor)."""
    before = await ctx.snapshot()
    new = await ctx.fleet.restarted(name, died - 1)
    return Fault(kind, name, died, new.started if new else None, workers, before, detail)


async def _kill_at(ctx: Context, kind: str, point: str, where: str) -> Fault:
    name = where.split(".")[0]
    proc = ctx.fleet.get(name) or await ctx.fleet.restarted(name, 0)
    assert proc is not None, f"no {name} worker running"
    nth = ctx.rng.randint(1, 3)
    spec = f"{point}:{where}:{nth}"
    ctx.fleet.arm(proc, spec)
    deadline = time.monotonic() + 45
    poisons = 0
    while proc.alive and time.monotonic() < deadline:
        if "dead_letter" in point and poisons < nth + 2:
            await ctx.traffic.poison_now(INPUT_OF[where])
            poisons += 1
        await asyncio.sleep(0.5 if "dead_letter" in point else 0.1)
    if proc.alive and ctx.fleet.disarm(proc):
        return Fault(kind, name, time.time(), None, {name}, detail=spec, outcome="checkpoint not reached in 45 s")
    while proc.alive:
        await asyncio.sleep(0.02)
    died = ctx.fleet.tripped_at(proc) or time.time()
    return await _restarted(ctx, kind, name, died, {name}, spec)


async def kill_before_db_commit(ctx: Context) -> Fault:
    return await _kill_at(ctx, "kill_before_db_commit", "before_db_commit", ctx.rng.choice(CONSUMERS["before_db_commit"]))


async def kill_after_commit_before_ack(ctx: Context) -> Fault:
    where = ctx.rng.choice(CONSUMERS["after_commit_before_ack"])
    return await _kill_at(ctx, "kill_after_commit_before_ack", "after_commit_before_ack", where)


async def kill_after_publish_before_mark_sent(ctx: Context) -> Fault:
    where = ctx.rng.choice(CONSUMERS["after_publish_before_mark_sent"])
    return await _kill_at(ctx, "kill_after_publish_before_mark_sent", "after_publish_before_mark_sent", where)


async def kill_in_dead_letter(ctx: Context) -> Fault:
    point = ctx.rng.choice(["before_dead_letter", "after_dead_letter_before_ack"])
    return await _kill_at(ctx, "kill_in_dead_letter", point, ctx.rng.choice(CONSUMERS["dead_letter"]))


async def _second_replica(ctx: Context, name: str) -> tuple[Proc, str]:
    """Start replica 1 of `name` and wait (at most 60 s) until it holds partitions of the worker's main
    group, so that what happens to it next happens to a member with work."""
    group = next(g for g, _parts in ctx.monitor.groups_of({name}))
    before = await _holders(ctx, group)
    replica = ctx.fleet.start(name, replica=1)
    started = time.time()
    while time.time() - started < 60:
        held = await _holders(ctx, group)
        if len(held) > len(before) and replica.alive:
            return replica, f"second replica held partitions after {time.time() - started:.1f} s"
        await asyncio.sleep(0.5)
    return replica, "second replica had no partitions after 60 s"


async def _holders(ctx: Context, group: str) -> set[str]:
    try:
        state, held = await asyncio.wait_for(ctx.monitor.holders(group), 10)
    except Exception:  # the broker is away: nobody is known to hold anything
        return set()
    return set(held.values()) if state == "Stable" else set()


async def rebalance(ctx: Context) -> Fault:
    name = ctx.rng.choice(WORKERS)
    replica, joined = await _second_replica(ctx, name)
    await asyncio.sleep(ctx.rng.uniform(2, 6))
    died = await ctx.fleet.kill(replica)
    before = await ctx.snapshot()
    return Fault("rebalance", name, died, died, {name}, before, f"{joined}, then SIGKILL")


async def pause(ctx: Context) -> Fault:
    """Half the time with a second replica running, which takes the paused one's partitions: the paused
    worker then comes back as a zombie, its message in hand already taken over."""
    name = ctx.rng.choice(WORKERS)
    proc = ctx.fleet.get(name) or await ctx.fleet.restarted(name, 0)
    assert proc is not None, f"no {name} worker running"
    replica, joined = None, ""
    if ctx.rng.random() < 0.5:
        replica, joined = await _second_replica(ctx, name)
    ctx.fleet.pause(proc)
    struck = time.time()
    before = await ctx.snapshot()
    length = SESSION_TIMEOUT + ctx.rng.uniform(1, 6)
    try:
        await asyncio.sleep(max(0.0, struck + length - time.time()))
    finally:
        ctx.fleet.resume(proc)
    lifted = time.time()
    if replica is not None:
        await asyncio.sleep(3)
        ctx.fleet.terminate(replica)
    detail = f"SIGSTOP for {length:.1f} s" + (f"; {joined}, took over, then SIGTERM" if replica else "")
    return Fault("pause", name, struck, lifted, {name}, before, detail)


async def _broker_down(ctx: Context, kind: str, down: float) -> Fault:
    struck = time.time()
    ctx.broker_down = True
    try:
        await ctx.kafka.stop()
        await asyncio.sleep(max(0.0, struck + down - time.time()))
    finally:
        await ctx.kafka.start()
        ctx.broker_down = False
    lifted = time.time()
    before = await ctx.snapshot()
    what = "all 3 nodes stopped and started" if ctx.kafka.mode == "cluster" else "stopped and started"
    return Fault(kind, "kafka", struck, lifted, set(WORKERS), before, f"{what}, down {lifted - struck:.1f} s")


async def broker_restart(ctx: Context) -> Fault:
    return await _broker_down(ctx, "broker_restart", ctx.rng.uniform(1, 3))


async def broker_outage_long(ctx: Context) -> Fault:
    return await _broker_down(ctx, "broker_outage_long", ctx.rng.uniform(35, 50))


async def leader_kill(ctx: Context) -> Fault:
    if ctx.kafka.mode != "cluster":
        raise ValueError("leader_kill needs --kafka cluster")
    node = await ctx.kafka.busiest_leader(sorted(ctx.monitor.parts))
    struck = time.time()
    await ctx.kafka.kill_node(node)
    before = await ctx.snapshot()
    down = ctx.rng.uniform(3, 8)
    try:
        await asyncio.sleep(down)
    finally:
        await ctx.kafka.start_node(node)
    return Fault("leader_kill", f"node {node}", struck, struck, set(WORKERS), before,
                 f"SIGKILL, restarted after {down:.1f} s; recovery counted from the kill")


async def _postgres_down(ctx: Context, kind: str, down: float, how: str) -> Fault:
    struck = time.time()
    ctx.pg_down = True
    try:
        if how == "kill":
            await ctx.postgres.kill()
        else:
            await ctx.postgres.stop_fast()
        await asyncio.sleep(1.0)
        before = await ctx.snapshot()
        await asyncio.sleep(max(0.0, struck + down - time.time()))
    finally:
        await ctx.postgres.start()
        ctx.pg_down = False
    return Fault(kind, "postgres", struck, time.time(), {"inbound", "ticketing"}, before,
                 f"{'SIGKILL of the postmaster' if how == 'kill' else 'stop -m fast'}, down {down:.1f} s")


async def pg_stop(ctx: Context) -> Fault:
    return await _postgres_down(ctx, "pg_stop", ctx.rng.uniform(2, 6), "stop")


async def pg_kill(ctx: Context) -> Fault:
    return await _postgres_down(ctx, "pg_kill", ctx.rng.uniform(1.5, 4), "kill")


async def db_outage_long(ctx: Context) -> Fault:
    return await _postgres_down(ctx, "db_outage_long", MAX_POLL_INTERVAL + ctx.rng.uniform(10, 20), "stop")


INJECTORS: dict[str, Injector] = {
    "kill": kill, "kill_before_db_commit": kill_before_db_commit,
    "kill_after_commit_before_ack": kill_after_commit_before_ack,
    "kill_after_publish_before_mark_sent": kill_after_publish_before_mark_sent,
    "kill_in_dead_letter": kill_in_dead_letter, "rebalance": rebalance, "pause": pause,
    "broker_restart": broker_restart, "leader_kill": leader_kill, "pg_stop": pg_stop, "pg_kill": pg_kill,
    "db_outage_long": db_outage_long, "broker_outage_long": broker_outage_long,
}
