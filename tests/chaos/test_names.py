"""The chaos harness knows Ticketflow from the outside only; this holds what it knows to the workers'
own wiring, so that a new input (like the internal command topics of ADR 10) cannot go unwatched."""

from __future__ import annotations

from tests.chaos.names import WORKER_GROUPS
from ticketflow.running import worker_groups
from workers.settings import Settings


def test_the_harness_watches_every_consumer_group_the_workers_run() -> None:
    settings = Settings(topic_prefix="")
    assert sorted((f"ticketflow.{w}.{p}", t) for w, p, t in WORKER_GROUPS) == sorted(worker_groups(settings))
