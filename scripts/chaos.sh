#!/usr/bin/env bash
# The chaos suite: traffic through the real topics, faults injected during the load, a check from the
# outside afterwards. It starts a Kafka (one node on 19392, or a 3-node cluster on 19492..) and a
# PostgreSQL (55632) of its own under var/chaos, never the shared ones, and stops them at the end,
# also on failure or Ctrl-C. See docs/chaos.md.
#
#   scripts/chaos.sh --messages 20000 --minutes 20 --faults standard --json var/chaos/out.json
#   scripts/chaos.sh --kafka cluster --faults leader_kill kill pause --minutes 5
#   scripts/chaos.sh --revision HEAD --minutes 25 ...     (workers of a fixed commit, see below)
#   scripts/chaos.sh --help
set -euo pipefail
here="$PWD"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

scripts/bootstrap.sh >&2

# The ports and run folder the run uses (read from the arguments, for the safety net below), and
# --revision REV (handled here): run the workers of that commit, exported once to var/chaos/src-<rev>,
# so that edits to the working tree during a long run do not reach the workers it restarts.
run_dir="$repo/var/chaos" kafka_port=19392 cluster_base=19492 pg_port=55632 revision=""
args=("$@") pass=()
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --run-dir) run_dir="$(cd "$here" && realpath -m "${args[i+1]:?--run-dir needs a folder}")"; i=$((i + 1)); continue ;;
    --kafka-port) kafka_port="${args[i+1]:-$kafka_port}" ;;
    --cluster-base-port) cluster_base="${args[i+1]:-$cluster_base}" ;;
    --pg-port) pg_port="${args[i+1]:-$pg_port}" ;;
    --revision) revision="${args[i+1]:?--revision needs a commit}"; i=$((i + 1)); continue ;;
    --json)  # relative to where the command was given, even when the run goes on from an exported commit
      pass+=(--json "$(cd "$here" && realpath -m "${args[i+1]:?--json needs a path}")"); i=$((i + 1)); continue ;;
  esac
  pass+=("${args[i]}")
done
mkdir -p "$run_dir"
run_dir="$(cd "$run_dir" && pwd)"

src="$repo"
if [ -n "$revision" ]; then
  rev="$(git rev-parse --short "$revision^{commit}")"
  src="$run_dir/src-$rev"
  if [ ! -d "$src" ]; then
    rm -rf "$src.tmp" && mkdir -p "$src.tmp"
    git archive "$rev" | tar -x -C "$src.tmp"
    mv "$src.tmp" "$src"
  fi
  # This harness, whatever that commit had; the Kafka jars already fetched.
  rm -rf "$src/tests/chaos" && cp -r tests/chaos "$src/tests/chaos" && rm -rf "$src/tests/chaos/__pycache__"
  [ -e "$src/deploy/kafka/lib" ] || ln -s "$repo/deploy/kafka/lib" "$src/deploy/kafka/lib"
  echo "chaos: workers of commit $rev from $src" >&2
  export CHAOS_REVISION="$rev"
fi

# Safety net: the harness stops what it started itself; if it was killed, stop this run's servers
# here (only the run folder's own: the shared broker and database are never touched).
cleanup() {
  local env=(TICKETFLOW_RUN_DIR="$run_dir" KAFKA_PORT="$kafka_port" KAFKA_CONTROLLER_PORT=$((kafka_port + 1))
             KAFKA_CLUSTER_BASE_PORT="$cluster_base" KAFKA_CLUSTER_CONTROLLER_BASE_PORT=$((cluster_base + 100))
             PG_PORT="$pg_port")
  env "${env[@]}" deploy/kafka/kafka.sh stop >/dev/null 2>&1 || true
  env "${env[@]}" deploy/kafka/kafka.sh cluster-stop >/dev/null 2>&1 || true
  if [ -d "$run_dir/postgres-$pg_port" ]; then
    env "${env[@]}" deploy/postgres/postgres.sh stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

status=0
(cd "$src" && "$repo/.venv/bin/python" -m tests.chaos --run-dir "$run_dir" "${pass[@]}") || status=$?
exit "$status"
