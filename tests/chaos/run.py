"""One chaos run, start to verdict: own broker(s) and PostgreSQL, topics under a prefix of the run's
own, the three workers as processes, traffic and faults until the message count or the time limit,
a bounded wait for the workers to catch up, the check, and everything stopped again (also on failure)."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import asyncpg

from tests.chaos import faults as fx
from tests.chaos.checker import Checker
from tests.chaos.fleet import Fleet
from tests.chaos.infra import REPO, Kafka, Ports, Postgres
from tests.chaos.knowledge import Knowledge, Observer
from tests.chaos.monitor import Monitor
from tests.chaos.names import Run, producer, ticketflow
from tests.chaos.records import HELP_DESK_ACCOUNT, accounts, contract_record
from tests.chaos.report import Report
from tests.chaos.traffic import Traffic


@dataclass(frozen=True)
class ChaosConfig:
    messages: int = 2_000
    """Records to send (channel messages, redeliveries, poison, commands)."""
    minutes: float = 5.0
    """Traffic and faults stop at this limit (a fault in progress is lifted first)."""
    faults: tuple[str, ...] = fx.standard("single")
    faults_per_kind: int | None = None
    """Stop injecting a kind after this many (None: cycle through the kinds until the time limit)."""
    seed: int = 20261125
    kafka: str = "single"
    ports: Ports = field(default_factory=Ports)
    run_dir: Path = REPO / "var" / "chaos"
    json_path: Path | None = None
    max_backlog: int = 3_000
    """Traffic waits while the workers' input groups have more than this many records waiting."""
    consumers_per_input: int = 2
    recovery_timeout: float = 90.0
    settle_timeout: float = 600.0
    fault_gap: tuple[float, float] = (1.0, 4.0)
    keep: bool = False
    """Keep the run's database and the broker's data afterwards (for digging)."""

    def described(self) -> dict[str, object]:
        out = asdict(self)
        out["run_dir"], out["json_path"] = str(self.run_dir), str(self.json_path) if self.json_path else None
        return out


def _logger(t0: float) -> Callable[[str], None]:
    def log(message: str) -> None:
        print(f"[chaos +{time.time() - t0:7.1f}s] {message}", file=sys.stderr, flush=True)
    return log


async def run_chaos(cfg: ChaosConfig) -> Report:
    """Run, check, report (the report also says what went wrong when the run itself failed)."""
    unknown = set(cfg.faults) - set(fx.INJECTORS)
    if unknown:
        raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {', '.join(fx.KINDS)}")
    if cfg.kafka != "cluster" and set(cfg.faults) & set(fx.CLUSTER_ONLY):
        raise ValueError(f"{', '.join(fx.CLUSTER_ONLY)} need --kafka cluster")
    run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
    started = time.time()
    log = _logger(started)
    out_dir = cfg.run_dir / "runs" / run_id
    report = Report(run_id, {**cfg.described(), "out_dir": str(out_dir), "revision": _revision()}, t0=started)
    kafka, postgres = Kafka(cfg.kafka, cfg.run_dir, cfg.ports), Postgres(cfg.run_dir, cfg.ports)
    database = f"chaos_{run_id.replace('-', '_')}"
    parts: dict[str, object] = {}
    try:
        log(f"run {run_id}: starting kafka ({cfg.kafka}) and postgresql under {cfg.run_dir}")
        await kafka.start_fresh()
        await postgres.start()
        run = Run(kafka.bootstrap, await postgres.create_database(database), f"chaos-{run_id}.",
                  kafka.replication_factor, cfg.consumers_per_input)
        await _provision(run)
        await _play(cfg, run, kafka, postgres, out_dir, report, parts, log)
    except Exception as exc:  # reported, and everything is stopped below
        report.error = f"{type(exc).__name__}: {exc}"
        log(f"run failed: {report.error}")
    except asyncio.CancelledError:  # Ctrl-C: stop everything, write what was seen, then stop
        report.error = "interrupted"
        log("interrupted: stopping everything")
    finally:
        await _teardown(parts, cfg, kafka, postgres, database, log)
    report.seconds = time.time() - started
    json_path = cfg.json_path or out_dir / "report.json"
    report.write_json(json_path)
    log(f"report written to {json_path}")
    if report.error == "interrupted":
        raise KeyboardInterrupt
    return report


def _revision() -> str:
    """The commit the workers ran (with +dirty when the working tree differs from it)."""
    if os.environ.get("CHAOS_REVISION"):  # scripts/chaos.sh --revision: an exported commit
        return os.environ["CHAOS_REVISION"]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


async def _provision(run: Run) -> None:
    """`ticketflow topics apply` and `ticketflow migrate`, then the accounts, as an operator would."""
    await ticketflow(run, "topics", "apply")
    await ticketflow(run, "migrate")
    sender = producer(run.bootstrap, "chaos-accounts")
    await sender.start()
    try:
        for account in accounts(run.prefix.strip(".")):
            record = contract_record(account, "account", "/chaos/accounts")
            await sender.send_and_wait(run.topic(record.topic), key=record.key, value=record.value,
                                       headers=record.headers)
    finally:
        await sender.stop()


async def _play(cfg: ChaosConfig, run: Run, kafka: Kafka, postgres: Postgres, out_dir: Path,
                report: Report, parts: dict[str, object], log: Callable[[str], None]) -> None:
    fleet = parts["fleet"] = Fleet(run.env(), out_dir / "workers")
    fleet.start_all()
    monitor = parts["monitor"] = Monitor(run)
    await monitor.start()
    knowledge = Knowledge()
    observer = parts["observer"] = Observer(run, knowledge)
    await observer.start()
    account_ids = [a.account_id for a in accounts(run.prefix.strip("."))]
    help_desk = {a for a in account_ids if a.endswith(HELP_DESK_ACCOUNT)}
    traffic = parts["traffic"] = Traffic(run, knowledge, random.Random(cfg.seed), account_ids, help_desk)
    await traffic.start()
    await _ready(traffic, knowledge, log)
    ctx = fx.Context(run, fleet, kafka, postgres, monitor, traffic, random.Random(cfg.seed + 1))
    parts["ctx"] = ctx
    t0 = time.time()
    deadline = t0 + cfg.minutes * 60
    stop = asyncio.Event()
    log(f"traffic: {cfg.messages} messages over at most {cfg.minutes} min; faults: {', '.join(cfg.faults) or 'none'}")
    sending = asyncio.create_task(traffic.run(cfg.messages, cfg.minutes * 60, lambda: monitor.backlog(
        {"inbound", "ticketing"}), cfg.max_backlog, stop))
    injecting = asyncio.create_task(_inject(ctx, cfg, lambda: stop.is_set() or time.time() >= deadline, report, log))
    tail = None  # with a per-kind limit, traffic stops shortly after the last fault's recovery
    shown = time.time()
    while not sending.done() and time.time() < deadline and (tail is None or time.time() < tail):
        if tail is None and injecting.done() and cfg.faults:
            tail = time.time() + 10
        if time.time() - shown >= 60:
            shown = time.time()
            log(f"progress: {sum(traffic.sent.values())} sent, backlog {monitor.backlog({'inbound', 'ticketing'})}, "
                f"{len(report.faults)} faults")
        await asyncio.sleep(0.5)
    stop.set()
    await sending
    await injecting
    report.sent, report.send_failures = traffic.sent, traffic.failed
    log(f"traffic done: {sum(traffic.sent.values())} sent, {sum(traffic.failed.values())} refused; "
        f"{len(report.injected)} faults; waiting for the workers to catch up")
    await observer.stop()
    parts.pop("observer")
    await _settle(run, cfg, monitor, report, log)
    report.unexpected_exits = [{"worker": e.name, "replica": e.replica, "status": e.status,
                                "at": round(e.at - report.t0, 1), "log_tail": e.log_tail}
                               for e in fleet.unexpected_exits()]
    log("checking topics and tables")
    findings = await Checker(run).check()
    report.counts.update(findings.counts)
    report.examples = {k: v for k, v in findings.examples.items() if v}


async def _ready(traffic: Traffic, knowledge: Knowledge, log: Callable[[str], None]) -> None:
    """The inbound worker takes messages: its first conversation is on the events topic (bounded wait)."""
    await traffic.send(traffic.threads.message(traffic.accounts[0], True), "inbound_new_thread")
    deadline = time.monotonic() + 180
    while not knowledge.conversations:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not process a first message within 180 s")
        await asyncio.sleep(0.2)
    log("workers up: first conversation seen")


async def _inject(ctx: fx.Context, cfg: ChaosConfig, over: Callable[[], bool], report: Report,
                  log: Callable[[str], None]) -> None:
    """Faults one after another (each lifted and recovered from, within bounds, before the next), kinds in
    turn in a seeded order, until `over()`."""
    order = list(cfg.faults)
    ctx.rng.shuffle(order)
    done: dict[str, int] = {}
    turn = 0
    while not over():
        todo = [k for k in order if cfg.faults_per_kind is None or done.get(k, 0) < cfg.faults_per_kind]
        if not todo:
            return
        kind = todo[turn % len(todo)]
        turn += 1
        await asyncio.sleep(ctx.rng.uniform(*cfg.fault_gap))
        if over():
            return
        try:
            fault = await fx.INJECTORS[kind](ctx)
        except Exception as exc:  # the run goes on; the report says so
            fault = fx.Fault(kind, "?", time.time(), None, set(), outcome=f"error: {type(exc).__name__}: {exc}")
        done[kind] = done.get(kind, 0) + 1
        if fault.lifted is not None and fault.before is not None:
            fault.recovery = await ctx.monitor.recovery(fault.workers, fault.before, fault.lifted, cfg.recovery_timeout)
            if fault.recovery is None:
                fault.outcome = f"not recovered within {cfg.recovery_timeout:.0f} s (or no work to show it)"
                fault.detail += f"; not moving: {', '.join(ctx.monitor.stuck[:6]) or 'no work'}"
        report.faults.append(fault)
        shown = "-" if fault.recovery is None else f"{fault.recovery:.1f} s"
        log(f"fault {len(report.faults)}: {kind} on {fault.target} ({fault.detail}): {fault.outcome}, recovery {shown}")


async def _unsent(run: Run) -> int:
    conn = await asyncpg.connect(run.dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
    finally:
        await conn.close()


async def _settle(run: Run, cfg: ChaosConfig, monitor: Monitor, report: Report, log: Callable[[str], None]) -> None:
    """Wait (bounded) until every group has committed everything and the outbox is empty, twice in a row:
    the workers feed each other, so one quiet look is not enough."""
    started = time.time()
    workers = {"inbound", "ticketing", "sync"}
    quiet = 0
    sample = None
    unsent = -1
    while time.time() - started < cfg.settle_timeout:
        sample = await monitor.next_sample(time.time(), 15)
        try:
            unsent = await _unsent(run)
        except (OSError, asyncpg.PostgresError):
            unsent = -1
        idle = sample is not None and unsent == 0 and not monitor.backlog(workers)
        quiet = quiet + 1 if idle else 0
        if quiet >= 2:
            report.settled = True
            break
    report.settle_seconds = time.time() - started
    if not report.settled:
        lagging = [f"{g} lag {sample.lag(g, parts)}" for g, parts in monitor.groups_of(workers)
                   if sample is not None and sample.lag(g, parts)]
        report.settle_detail = (f"after {cfg.settle_timeout:.0f} s: " + (", ".join(lagging) or "every group at lag 0")
                                + f"; {unsent} outbox rows unsent")
    log(f"caught up: {report.settled} after {report.settle_seconds:.0f} s")


async def _teardown(parts: dict[str, object], cfg: ChaosConfig, kafka: Kafka, postgres: Postgres, database: str,
                    log: Callable[[str], None]) -> None:
    """Everything the run started is stopped, whatever happened; each step on its own."""
    ctx = parts.get("ctx")
    steps = []
    if isinstance(ctx, fx.Context) and ctx.broker_down:
        steps.append(("restart kafka", kafka.start()))
    if isinstance(ctx, fx.Context) and ctx.pg_down:
        steps.append(("restart postgresql", postgres.start()))
    for name in ("traffic", "observer", "monitor"):
        part = parts.get(name)
        if part is not None:
            steps.append((f"stop {name}", part.stop()))  # type: ignore[attr-defined]
    if parts.get("fleet") is not None:
        steps.append(("stop workers", parts["fleet"].close()))  # type: ignore[attr-defined]
    if not cfg.keep:
        steps.append(("drop database", postgres.drop_database(database)))
    steps += [("stop postgresql", postgres.stop_fast()), ("stop kafka", kafka.stop())]
    if not cfg.keep:
        steps.append(("wipe kafka data", kafka.wipe_data()))
    for what, step in steps:
        try:
            await asyncio.wait_for(step, 300)
        except Exception as exc:  # go on stopping the rest
            log(f"teardown: {what} failed: {type(exc).__name__}: {exc}")
    log("stopped: workers, postgresql, kafka")
