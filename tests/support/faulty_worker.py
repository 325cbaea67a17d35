"""`ticketflow` with a fault hook installed: the process exits at once (status 17, like a SIGKILL:
no cleanup, nothing flushed) the Nth time it reaches a named checkpoint.

    TICKETFLOW_FAULT="after_commit_before_ack:inbound.messages[:N]" python -m tests.support.faulty_worker worker inbound

Test-only: the production code has only the checkpoints (`workers.delivery.checkpoints`), never the hook.
"""

from __future__ import annotations

import os
import sys

from workers.delivery import checkpoints

FAULT_EXIT = 17


def install_from_env() -> None:
    spec = os.environ.get("TICKETFLOW_FAULT", "")
    if not spec:
        return
    point, where, *nth = spec.split(":")
    remaining = [int(nth[0]) if nth else 1]

    def hook(reached_point: str, reached_where: str) -> None:
        if reached_point == point and reached_where == where:
            remaining[0] -= 1
            if remaining[0] <= 0:
                sys.stderr.write(f"fault injection: exiting at {point} in {where}\n")
                sys.stderr.flush()
                os._exit(FAULT_EXIT)

    checkpoints.install(hook)


if __name__ == "__main__":
    install_from_env()
    from ticketflow.cli import main

    sys.exit(main(sys.argv[1:]))
