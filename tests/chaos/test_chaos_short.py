"""The short chaos run, in the normal test command: a few hundred messages and every fault kind the
run can carry in a few minutes, on a Kafka and a PostgreSQL of its own (the shared ones are never
touched), then the outside check. Asserts what must hold whatever the timing: nothing lost, nothing
duplicated, no version gap, dead letters exactly the poison sent, no transient failure dead-lettered,
the outbox empty. Recovery times are reported (the table is printed), never asserted here.

`TICKETFLOW_CHAOS_SEED` reproduces a run (the seed is in the failure message)."""

from __future__ import annotations

import os

from tests.chaos import faults as fx
from tests.chaos.infra import REPO, Ports
from tests.chaos.run import ChaosConfig, run_chaos

SEED = int(os.environ.get("TICKETFLOW_CHAOS_SEED", "20261125"))
SHORT = ChaosConfig(
    messages=600, minutes=8.0, faults=fx.standard("single"), faults_per_kind=1, seed=SEED, kafka="single",
    ports=Ports(kafka=19396, cluster_base=19692, postgres=55633), run_dir=REPO / "var" / "chaos-ci",
    recovery_timeout=40.0, settle_timeout=240.0, fault_gap=(0.5, 1.5),
)


async def test_chaos_short_run_loses_nothing_duplicates_nothing_and_dead_letters_only_the_poison() -> None:
    report = await run_chaos(SHORT)
    print(report.table())
    c = report.counts
    why = f"seed {SEED}, run {report.run_id}: {report.problems()}; examples: {report.examples}"
    assert report.error == "", why
    assert report.settled, why
    assert {f.kind for f in report.injected} == set(SHORT.faults), why
    assert report.lost == 0, why
    assert report.duplicated == 0, why
    assert c["version_gaps"] == 0, why
    assert c["dead_letters"] == c["poison_sent"] > 0 and c["poison_not_dead_lettered"] == 0, why
    assert c["dead_letter_wrong_reason"] == 0, why
    assert c["transient_dead_lettered"] == 0, why
    assert c["outbox_unsent"] == 0, why
    assert report.unexpected_exits == [], why
    assert report.ok, why
