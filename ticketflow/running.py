"""Running the workers: one (`ticketflow worker NAME`) or all three in one process (`ticketflow up`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Mapping

from storage.migrate import upgrade_async
from workers.delivery.backoff import until_available
from workers.observability.config import ObservabilitySettings
from workers.observability.process import Observability
from workers.observability.tracing import configure_tracing
from workers.runtime import Worker
from workers.settings import Settings

WORKERS = ("inbound", "ticketing", "sync")


def build_worker(name: str, settings: Settings, obs: Observability | None = None) -> Worker:
    if name == "inbound":
        from workers.inbound.app import build
    elif name == "ticketing":
        from workers.ticketing.app import build
    elif name == "sync":
        from workers.sync.app import build
    else:
        raise ValueError(f"unknown worker {name!r}; choose from {', '.join(WORKERS)}")
    return build(settings, obs)


def worker_groups(settings: Settings, names: tuple[str, ...] = WORKERS) -> list[tuple[str, str]]:
    """(consumer group, topic) of every input of the workers: what lag is measured on. Read from the
    workers' own wiring (building a worker opens no connection)."""
    groups = []
    for name in names:
        worker = build_worker(name, settings)
        groups += [(settings.group(worker.name, purpose), topic) for purpose, topic in worker.inputs]
    return groups


async def start_workers(settings: Settings, names: tuple[str, ...] = WORKERS,
                        obs: Observability | None = None,
                        per_worker: Mapping[str, Settings] | None = None) -> list[Worker]:
    """Build and start the workers `names` in this process (migrating first, unless switched off); with
    `obs`, they report to this process's metrics and health. `per_worker` gives a worker its own settings
    instead of `settings` (its Kafka principal and database role, TICKETFLOW_MIGRATE_ON_START=false);
    `settings` alone decides the migration."""
    if settings.migrate_on_start:
        await until_available(lambda: upgrade_async(settings.database_url), "database", logging.getLogger("ticketflow"))
    workers = [build_worker(n, (per_worker or {}).get(n, settings), obs) for n in names]
    for worker in workers:
        await worker.start(migrate=False)
    return workers


async def stop_workers(workers: list[Worker]) -> None:
    for worker in reversed(workers):
        await worker.stop()


def quiet_collector() -> None:
    """Once the workers run: what startup made (modules, schemas, clients) is moved out of the cyclic
    garbage collector's sight (`gc.freeze`), and young collections run every 20,000 allocations instead
    of 700. A batch of 500 records allocates hundreds of thousands of objects, nearly all freed by
    reference counting; the collector walking the whole heap again and again cost ~10% of a worker's
    CPU. Cycles are still collected. Called again, it collects and freezes only what came since."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


EXIT_FATAL = 70
"""Exit status of a worker process that stopped because a record could be neither processed nor
dead-lettered, or the relay met a permanent error (EX_SOFTWARE). Its log says which."""


async def run_until_stopped(settings: Settings, names: tuple[str, ...]) -> int:
    """Run the workers until SIGINT/SIGTERM (exit 0) or until one of them fails for good (EXIT_FATAL)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tracing = configure_tracing(f"ticketflow-{'-'.join(names)}")
    obs = Observability(ObservabilitySettings.from_env(), kafka_options=settings.kafka.options())
    await obs.start()
    try:
        return await _run(settings, names, stop, obs)
    finally:
        await obs.stop()
        if tracing is not None:
            tracing.shutdown()


async def _run(settings: Settings, names: tuple[str, ...], stop: asyncio.Event, obs: Observability) -> int:
    quiet_collector()  # the imports, before the consumers join: a full collection takes a while
    workers = await start_workers(settings, names, obs)
    quiet_collector()  # what starting made (the rest is frozen already: a short collection)
    logging.getLogger("ticketflow").info("workers %s running on %s; Ctrl-C stops", ", ".join(names),
                                          settings.bootstrap_servers)
    waits = [asyncio.ensure_future(stop.wait())] + [asyncio.ensure_future(w.failed.wait()) for w in workers]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        await stop_workers(workers)
    failures = [w.failure for w in workers if w.failure]
    for failure in failures:
        logging.getLogger("ticketflow").critical("stopped: %s", failure)
    return EXIT_FATAL if failures else 0
