"""Ticketflow's benchmarks: `scripts/bench.sh` (= `python -m benchmarks`). See docs/benchmarks.md."""
