#!/usr/bin/env bash
# The main job: a day in a support inbox on a local Kafka broker and the embedded SQLite database.
# Installs what is missing, starts the broker (left running; `deploy/kafka/kafka.sh stop` stops it),
# provisions the topics, runs the demo and exits with its status.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/bootstrap.sh
export KAFKA_PORT="${KAFKA_PORT:-9092}"
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:$KAFKA_PORT}"
if [ "$KAFKA_BOOTSTRAP_SERVERS" = "127.0.0.1:$KAFKA_PORT" ]; then
  deploy/kafka/kafka.sh start
fi
export TICKETFLOW_TOPIC_PREFIX="${TICKETFLOW_TOPIC_PREFIX:-demo.}"
# The story goes to stdout; library logs go to a file the demo names at the end (-v: to stderr instead).
if ! applied="$(.venv/bin/ticketflow topics apply 2>&1)"; then
  echo "$applied" >&2
  exit 1
fi
exec .venv/bin/python -m tools.demo "$@"
