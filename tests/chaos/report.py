"""What a chaos run found: one table on stdout, everything (with examples of each problem) in JSON."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.faults import SESSION_TIMEOUT, WORKER_KILLS, Fault

RECOVERY_BUDGET = SESSION_TIMEOUT + 5.0
"""Goal for a worker SIGKILL: back within the session timeout plus 5 s (reported, never asserted in CI)."""

LOST = ("lost_inbound", "lost_commands", "lost_reactions", "lost_events", "lost_projection")
DUPLICATED = ("duplicated_effects", "duplicated_commands")


@dataclass
class Report:
    run_id: str
    config: dict[str, Any]
    seconds: float = 0.0
    sent: Counter[str] = field(default_factory=Counter)
    send_failures: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    t0: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    settled: bool = False
    settle_seconds: float = 0.0
    settle_detail: str = ""
    unexpected_exits: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""

    # --- figures -------------------------------------------------------------------------
    def figure(self, names: tuple[str, ...]) -> int:
        return sum(self.counts[n] for n in names)

    @property
    def lost(self) -> int:
        return self.figure(LOST)

    @property
    def duplicated(self) -> int:
        return self.figure(DUPLICATED)

    @property
    def injected(self) -> list[Fault]:
        return [f for f in self.faults if f.outcome == "injected" or f.outcome.startswith("not recovered")]

    def recovery(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for kind in sorted({f.kind for f in self.injected}):
            mine = [f for f in self.injected if f.kind == kind]
            times = [f.recovery for f in mine if f.recovery is not None]
            out[kind] = {"n": len(mine), "measured": len(times),
                         "min": round(min(times), 2) if times else None,
                         "median": round(statistics.median(times), 2) if times else None,
                         "max": round(max(times), 2) if times else None}
        return out

    def problems(self) -> list[str]:
        c = self.counts
        found = []
        if self.error:
            found.append(f"run failed: {self.error}")
        if not self.settled:
            found.append(f"the workers did not catch up: {self.settle_detail}")
        checks = {
            "lost": self.lost, "duplicated effects": self.duplicated, "version gaps": c["version_gaps"],
            "events without rows": c["events_without_rows"], "republished with another key or version":
            c["republished_changed"], "poison not dead-lettered": c["poison_not_dead_lettered"],
            "dead letters with the wrong reason": c["dead_letter_wrong_reason"],
            "transient failures dead-lettered": c["transient_dead_lettered"], "outbox unsent": c["outbox_unsent"],
            "unexpected worker exits": len(self.unexpected_exits),
        }
        found += [f"{what}: {n}" for what, n in checks.items() if n]
        if c["dead_letters"] != c["poison_sent"]:
            found.append(f"dead letters {c['dead_letters']} != poison sent {c['poison_sent']}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems()

    # --- output --------------------------------------------------------------------------
    def rows(self) -> list[tuple[str, str, str, str]]:
        c = self.counts
        by_kind = Counter(f.kind for f in self.injected)

        def row(name: str, value: Any, goal: str = "", good: bool | None = None) -> tuple[str, str, str, str]:
            return name, str(value), goal, "" if good is None else ("ok" if good else "FAIL")

        rows = [
            row("run", f"{self.run_id}, {self.seconds:.0f} s, kafka {self.config.get('kafka')}"),
            row("messages sent (accepted by the broker)", sum(self.sent.values()),
                str(self.config.get("messages"))),
            row("  channel messages / redeliveries", f"{c['inbound_accepted']} / {c['inbound_redeliveries']}"),
            row("  agent commands / redeliveries", f"{c['agent_commands']} / {c['command_redeliveries']}"),
            row("  poison", c["poison_sent"]),
            row("  sends refused (not counted)", sum(self.send_failures.values())),
            row("sync commands (repeats)", f"{c['sync_commands']} ({c['sync_command_repeats']})"),
            row("commands: events / rejected / no change", f"{c['commands_with_events']} / {c['commands_rejected']} / "
                                                           f"{c['commands_without_change']}"),
            row("events (distinct) / republished", f"{c['events_distinct']} / {c['republished']}"),
            row("faults injected", f"{len(self.injected)} of {len(by_kind)} kinds", ">= 100 of >= 6 (full run)"),
            row("lost", self.lost, "0", self.lost == 0),
            row("duplicated effects", self.duplicated, "0", self.duplicated == 0),
            row("version gaps or disorder", c["version_gaps"], "0", c["version_gaps"] == 0),
            row("dead letters / poison sent", f"{c['dead_letters']} / {c['poison_sent']}", "equal",
                c["dead_letters"] == c["poison_sent"] and not c["poison_not_dead_lettered"]
                and not c["dead_letter_wrong_reason"]),
            row("  dead-letter repeats (same input again)", c["dead_letter_repeats"]),
            row("transient failures dead-lettered", c["transient_dead_lettered"], "0", c["transient_dead_lettered"] == 0),
            row("outbox unsent at the end (parked)", f"{c['outbox_unsent']} ({c['outbox_parked']})", "0",
                c["outbox_unsent"] == 0),
            row("unexpected worker exits", len(self.unexpected_exits), "0", not self.unexpected_exits),
            row("caught up after the run", f"{'yes' if self.settled else 'NO'} in {self.settle_seconds:.0f} s", "yes",
                self.settled),
        ]
        for kind, r in self.recovery().items():
            value = (f"{r['min']} / {r['median']} / {r['max']} s" if r["measured"] else "not observed")
            budget = kind in WORKER_KILLS
            good = None if not budget or not r["measured"] else r["max"] <= RECOVERY_BUDGET
            rows.append(row(f"recovery {kind} (n={r['n']}, measured {r['measured']}) min/med/max", value,
                            f"<= {RECOVERY_BUDGET:.0f} s" if budget else "", good))
        return rows

    def table(self) -> str:
        rows = [("figure", "value", "goal", "")] + self.rows()
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        line = "+".join("-" * (w + 2) for w in widths)
        out = [line]
        for i, r in enumerate(rows):
            out.append(" | ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
            if i == 0:
                out.append(line)
        out.append(line)
        problems = self.problems()
        out.append("verdict: " + ("OK" if not problems else "FAIL: " + "; ".join(problems)))
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "config": self.config, "seconds": round(self.seconds, 1), "ok": self.ok,
            "problems": self.problems(),
            "figures": {"lost": self.lost, "duplicated": self.duplicated, "version_gaps": self.counts["version_gaps"],
                        "dead_letters": self.counts["dead_letters"], "poison_sent": self.counts["poison_sent"],
                        "transient_dead_lettered": self.counts["transient_dead_lettered"],
                        "outbox_unsent": self.counts["outbox_unsent"], "republished": self.counts["republished"],
                        "messages_sent": sum(self.sent.values()), "faults": len(self.injected),
                        "fault_kinds": len({f.kind for f in self.injected})},
            "sent": dict(self.sent), "send_failures": dict(self.send_failures), "counts": dict(self.counts),
            "recovery": self.recovery(), "recovery_budget_seconds": RECOVERY_BUDGET,
            "faults": [f.as_dict(self.t0) for f in self.faults], "examples": self.examples,
            "settled": self.settled, "settle_seconds": round(self.settle_seconds, 1), "settle_detail": self.settle_detail,
            "unexpected_exits": self.unexpected_exits, "error": self.error,
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2, default=str) + "\n")
