"""`ticketflow worker NAME` with a checkpoint hook the chaos run can arm at any moment (test-only: the
production code has only the named checkpoints, `workers.delivery.checkpoints`).

    TICKETFLOW_CHAOS_ARM=/path/arm python -m tests.chaos.armed_worker worker inbound

On SIGUSR1 the process reads the arm file: `point:where[:N]` arms (the Nth time the worker reaches
that checkpoint it writes `<arm>.tripped` and SIGKILLs itself: nothing flushed, nothing cleaned up),
an empty file disarms. Without the variable it behaves exactly like `ticketflow`.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from workers.delivery import checkpoints

ARM_ENV = "TICKETFLOW_CHAOS_ARM"


class Arm:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.point: str | None = None
        self.where: str | None = None
        self.remaining = 0

    def load(self, *_signal: Any) -> None:
        try:
            spec = self.path.read_text().strip()
        except OSError:
            spec = ""
        if not spec:
            self.point = self.where = None
            return
        point, where, *nth = spec.split(":")
        self.point, self.where, self.remaining = point, where, int(nth[0]) if nth else 1

    def hook(self, point: str, where: str) -> None:
        if point != self.point or where != self.where:
            return
        self.remaining -= 1
        if self.remaining > 0:
            return
        Path(f"{self.path}.tripped").write_text(f"{point}:{where} {time.time():.3f}\n")
        os.kill(os.getpid(), signal.SIGKILL)


def main(argv: list[str]) -> int:
    path = os.environ.get(ARM_ENV)
    if path:
        arm = Arm(Path(path))
        arm.load()
        signal.signal(signal.SIGUSR1, arm.load)
        checkpoints.install(arm.hook)
    from ticketflow.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
