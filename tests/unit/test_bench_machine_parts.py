"""The benchmark says where the machine's CPU went in a window: the workers, the broker, PostgreSQL, the
benchmark itself, and the rest (`benchmarks.procs.part_shares`, `cpu_by_part`)."""

from __future__ import annotations

import os

from benchmarks.procs import CLOCK_TICKS, PARTS, CpuTimes, cpu_by_part, part_shares


def test_each_part_is_its_share_of_all_cores_and_other_is_the_busy_rest() -> None:
    # a 10 s window on 2 cores: 20 s of CPU time in all, 15 s of it busy (75%)
    before = CpuTimes(busy=0.0, stolen=0.0, total=0.0)
    after = CpuTimes(busy=15 * CLOCK_TICKS, stolen=0.0, total=20 * CLOCK_TICKS)
    start = {"workers": 100.0, "broker": 50.0, "postgresql": 7.0, "benchmark": 1.0}
    end = {"workers": 106.0, "broker": 52.0, "postgresql": 9.0, "benchmark": 4.0}
    shares = part_shares(start, end, before, after)
    assert shares == {"workers": 30.0, "broker": 10.0, "postgresql": 10.0, "benchmark": 15.0, "other": 10.0}


def test_other_is_never_negative_when_the_parts_read_more_than_the_machine() -> None:
    # the readings are not atomic: a part may read a tick more than the machine's busy time
    before = CpuTimes(busy=0.0, stolen=0.0, total=0.0)
    after = CpuTimes(busy=1 * CLOCK_TICKS, stolen=0.0, total=2 * CLOCK_TICKS)
    shares = part_shares(dict.fromkeys(PARTS, 0.0), {**dict.fromkeys(PARTS, 0.0), "workers": 1.5}, before, after)
    assert shares["other"] == 0.0


def test_this_process_is_the_benchmark_and_pids_given_are_workers() -> None:
    assert set(cpu_by_part(set())) == set(PARTS)
    mine = cpu_by_part({os.getpid()})
    assert mine["workers"] > 0 and mine["benchmark"] == 0.0
    assert cpu_by_part(set())["benchmark"] > 0
