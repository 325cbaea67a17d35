"""Where a secret could leak during the secured test run, kept so `test_secrets_stay_secret.py` can look:
every log record of this process (the workers run in it), every command line tool's output, and the
brokers' own log files; and the secrets themselves (every generated password, and the wrong ones tried)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import REPO


class Recorder(logging.Handler):
    """Keeps every record (formatted when scanned, so logging stays cheap)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Exposure:
    """The secrets to look for and the places to look in."""

    secrets: dict[str, str] = field(default_factory=dict)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    recorder: Recorder = field(default_factory=Recorder)

    def secret(self, name: str, value: str) -> str:
        """Remember `value` as a secret (named for the failure message, which never shows the value)."""
        self.secrets[name] = value
        return value

    def output(self, source: str, *texts: str) -> None:
        self.outputs += [(source, t) for t in texts if t]

    def places(self) -> Iterator[tuple[str, str]]:
        """(where, text) of everything recorded so far."""
        yield from self.outputs
        for record in self.recorder.records:
            yield f"log record of {record.name}", self.recorder.format(record)
        for path in self.files:
            for log in sorted(path.parent.glob(path.name)):
                yield str(log), log.read_text(errors="replace")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any Kafka, database or Ticketflow setting (CI sets some), plus `extra`."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "TICKETFLOW_", "DATABASE_URL"))}
    return {**kept, **extra}


def run_cli(exposure: Exposure, env: Mapping[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m ticketflow.cli ARGS` with `env` (see clean_env), its output kept for the scan."""
    done = subprocess.run([sys.executable, "-m", "ticketflow.cli", *args], cwd=REPO, env=dict(env),
                          capture_output=True, text=True, timeout=timeout)
    exposure.output(f"ticketflow {' '.join(args)}", done.stdout, done.stderr)
    return done
