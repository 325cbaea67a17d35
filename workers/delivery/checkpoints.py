"""Named points on the delivery path where a fault-injection harness may act (tests and the chaos
suite only). In production no hook is installed and `reached` does nothing.

Points: `before_db_commit` (the transaction is written, not committed), `after_commit_before_ack`
(committed, offset not yet committed), `after_publish_before_mark_sent` (the relay published rows
it has not yet marked sent), `before_dead_letter` / `after_dead_letter_before_ack` (around a
dead-letter write). `where` names the consumer or worker (e.g. `inbound.messages`, `inbound`).
"""

from __future__ import annotations

from collections.abc import Callable

Hook = Callable[[str, str], None]
_hook: Hook | None = None


def install(hook: Hook | None) -> None:
    """Install (or with None, remove) the process-wide hook."""
    global _hook
    _hook = hook


def installed() -> bool:
    """Whether a hook is installed (a worker's relay process then asks its worker at each checkpoint)."""
    return _hook is not None


def reached(point: str, where: str) -> None:
    if _hook is not None:
        _hook(point, where)
