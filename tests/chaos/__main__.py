"""`python -m tests.chaos --messages N --minutes M --faults kinds... --json out.json` (scripts/chaos.sh).

Exit status: 0 every check held; 1 a check failed (the table says which); 2 usage."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from tests.chaos import faults as fx
from tests.chaos.infra import Ports
from tests.chaos.run import ChaosConfig, run_chaos


def _kinds(text: str, kafka: str) -> tuple[str, ...]:
    kinds: list[str] = []
    for word in text.replace(",", " ").split():
        if word == "none":
            continue
        if word == "standard":
            kinds += fx.standard(kafka)
        elif word == "all":
            kinds += fx.KINDS
        elif word in fx.INJECTORS:
            kinds.append(word)
        else:
            raise argparse.ArgumentTypeError(f"unknown fault kind {word!r}; known: standard, all, none, "
                                             f"{', '.join(fx.KINDS)}")
    return tuple(dict.fromkeys(kinds))


def parser() -> argparse.ArgumentParser:
    d = ChaosConfig()
    p = argparse.ArgumentParser(prog="scripts/chaos.sh", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Fault kinds:\n" + fx.__doc__.split("\n\n", 1)[1])
    p.add_argument("--messages", type=int, default=d.messages, help=f"records to send (default {d.messages})")
    p.add_argument("--minutes", type=float, default=d.minutes, help=f"time limit for traffic and faults (default {d.minutes})")
    p.add_argument("--faults", nargs="+", default=["standard"],
                   help="fault kinds (space or comma separated); 'standard' = every kind but the long outages "
                        "(and leader_kill on a single node); 'all' = every kind; 'none' = traffic only (default: standard)")
    p.add_argument("--faults-per-kind", type=int, help="inject each kind at most this often (default: no limit)")
    p.add_argument("--kafka", choices=["single", "cluster"], default=d.kafka,
                   help="a single broker, or a three-node cluster at replication factor 3 (default single)")
    p.add_argument("--seed", type=int, default=d.seed, help=f"traffic and fault RNG seed (default {d.seed})")
    p.add_argument("--json", type=Path, help="write the report here (default var/chaos/runs/<run>/report.json)")
    p.add_argument("--max-backlog", type=int, default=d.max_backlog,
                   help=f"traffic waits while more records than this wait in the input groups (default {d.max_backlog})")
    p.add_argument("--consumers-per-input", type=int, default=d.consumers_per_input,
                   help=f"TICKETFLOW_CONSUMERS_PER_INPUT for the workers (default {d.consumers_per_input})")
    p.add_argument("--recovery-timeout", type=float, default=d.recovery_timeout,
                   help=f"seconds to wait for recovery after each fault (default {d.recovery_timeout:.0f})")
    p.add_argument("--settle-timeout", type=float, default=d.settle_timeout,
                   help=f"seconds to wait for the workers to catch up at the end (default {d.settle_timeout:.0f})")
    p.add_argument("--run-dir", type=Path, default=d.run_dir, help=f"run folder (default {d.run_dir})")
    p.add_argument("--kafka-port", type=int, default=d.ports.kafka, help=f"single broker port (default {d.ports.kafka})")
    p.add_argument("--cluster-base-port", type=int, default=d.ports.cluster_base,
                   help=f"cluster brokers on base..base+2, controllers on base+100.. (default {d.ports.cluster_base})")
    p.add_argument("--pg-port", type=int, default=d.ports.postgres, help=f"PostgreSQL port (default {d.ports.postgres})")
    p.add_argument("--keep", action="store_true", help="keep the run's database and broker data afterwards")
    p.add_argument("--revision", metavar="REV", help="(scripts/chaos.sh only) run the workers of commit REV, exported "
                                                    "to <run-dir>/src-<rev>, safe from edits to the working tree")
    return p


def config(argv: list[str] | None = None) -> ChaosConfig:
    p = parser()
    args = p.parse_args(argv)
    try:
        kinds = _kinds(" ".join(args.faults), args.kafka)
    except argparse.ArgumentTypeError as exc:
        p.error(str(exc))
    if args.revision:
        p.error("--revision is handled by scripts/chaos.sh (it exports the commit and runs from there)")
    if args.messages < 1 or args.minutes <= 0:
        p.error("--messages and --minutes must be positive")
    return ChaosConfig(messages=args.messages, minutes=args.minutes, faults=kinds, faults_per_kind=args.faults_per_kind,
                       seed=args.seed, kafka=args.kafka, ports=Ports(args.kafka_port, args.cluster_base_port, args.pg_port),
                       run_dir=args.run_dir, json_path=args.json, max_backlog=args.max_backlog,
                       consumers_per_input=args.consumers_per_input, recovery_timeout=args.recovery_timeout,
                       settle_timeout=args.settle_timeout, keep=args.keep)


def main(argv: list[str] | None = None) -> int:
    cfg = config(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the run's own clients, while brokers come and go
    try:
        report = asyncio.run(run_chaos(cfg))
    except ValueError as exc:
        print(f"chaos: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(report.table())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
