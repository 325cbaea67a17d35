#!/usr/bin/env bash
# Installs what Ticketflow needs on a fresh machine: the virtualenv with the Python packages, and
# the Kafka jars from Maven Central. Idempotent and fast when nothing changed.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "bootstrap: Python >= 3.11 is required (found: $("$python" --version 2>&1))" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  # Missing, or left half made by an interrupted run (no pip in it): make it afresh.
  echo "bootstrap: creating .venv"
  rm -rf .venv
  "$python" -m venv .venv
fi

# Exact versions with hashes (requirements-test.lock, from pyproject.toml with pip-compile; see
# docs/operations.md), then the project itself, editable, without dependencies. pip's and setuptools'
# chatter (the editable-install warning) goes to a log shown only when something fails.
stamp=".venv/.ticketflow-installed"
want="$(cat pyproject.toml requirements-test.lock | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "bootstrap: installing Python packages into .venv (pinned by requirements-test.lock)"
  mkdir -p var
  log="var/bootstrap-pip.log"
  if ! { .venv/bin/python -m pip install --upgrade pip \
         && .venv/bin/python -m pip install --require-hashes -r requirements-test.lock \
         && .venv/bin/python -m pip install --no-deps -e . \
         && .venv/bin/python -m pip check; } > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "bootstrap: pip failed (whole log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

deploy/kafka/kafka.sh fetch
