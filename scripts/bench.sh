#!/usr/bin/env bash
# Ticketflow's benchmarks in one bounded run: passthrough reference points (raw aiokafka, FastStream),
# the inbound path on PostgreSQL and SQLite, the ticket-command path, 1 vs 2 inbound processes,
# open-loop latency at 25/50/75% of the measured maximum, and (--scenarios ...,stored-1m) a database
# already holding 1M messages. Prints one table and writes JSON (versions, settings, machine, commit).
#
#   scripts/bench.sh [--messages N] [--seconds S] [--cap S] [--scenarios a,b,c] [--json out.json]
#   scripts/bench.sh --help
#
# Starts the project's own Kafka and PostgreSQL like scripts/test.sh (left running), unless
# KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL (postgresql+asyncpg://..., a role that may CREATE DATABASE)
# are set. Every scenario uses its own topic prefix and database and removes them when done.
# See docs/benchmarks.md.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

for arg in "$@"; do
  if [ "$arg" = "-h" ] || [ "$arg" = "--help" ]; then exec .venv/bin/python -m benchmarks --help; fi
done

scripts/bootstrap.sh >&2

if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  export KAFKA_PORT="${KAFKA_PORT:-9092}"
  deploy/kafka/kafka.sh start >&2
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
else
  export BENCH_KAFKA_EXTERNAL=1
fi
case "${DATABASE_URL:-}" in
  postgresql*) ;;
  *) export DATABASE_URL="$(deploy/postgres/postgres.sh start | tail -n 1)" ;;
esac

export BENCH_COMMAND="scripts/bench.sh${*:+ $*}"
exec .venv/bin/python -m benchmarks "$@"
