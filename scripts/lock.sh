#!/usr/bin/env bash
# Regenerates the lock files from pyproject.toml with pip-compile (exact versions and hashes):
#   requirements.lock       the runtime dependencies (what the container image installs)
#   requirements-test.lock  runtime + the `test` extra (what scripts/bootstrap.sh and CI install)
# Run it after changing dependencies in pyproject.toml; tests/deploy/test_lock_files.py fails until you do.
# pip-tools lives in its own virtualenv under var/tools (git ignores var/).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
tools="var/tools/piptools"
if [ ! -x "$tools/bin/pip-compile" ]; then
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet "pip-tools==7.6.2"
fi
common=(--quiet --strip-extras --generate-hashes --no-emit-index-url --no-emit-find-links)
"$tools/bin/pip-compile" "${common[@]}" --output-file requirements.lock pyproject.toml
"$tools/bin/pip-compile" "${common[@]}" --extra test --output-file requirements-test.lock pyproject.toml
echo "lock: requirements.lock and requirements-test.lock regenerated"
