"""`ticketflow`: operate Ticketflow (topics, workers, accounts, context, dead letters, schemas, demo)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from datetime import datetime
from pathlib import Path

from ticketflow.config import Settings


def _cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from contracts.topics import CATALOGUE
    from ticketflow.provisioning import apply_topics

    if args.action == "list":
        for spec in CATALOGUE:
            print(f"{settings.topic(spec.name):45} p={spec.partitions} {spec.cleanup_policy:8} key={spec.key}")
        return 0
    report = asyncio.run(apply_topics(settings))
    print("\n".join(report.lines()))
    return 0


def _cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import upgrade

    upgrade(settings.database_url)
    print(f"database at head: {settings.database_url}")
    return 0


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.running import run_until_stopped

    asyncio.run(run_until_stopped(settings, (args.name,)))
    return 0


def _cmd_up(_args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.running import WORKERS, run_until_stopped

    asyncio.run(run_until_stopped(settings, WORKERS))
    return 0


def _cmd_accounts(args: argparse.Namespace, settings: Settings) -> int:
    from contracts.accounts import Account, AccountSettings
    from contracts.common import ReplyToClosedPolicy, Tier
    from ticketflow.publishing import publish

    account = Account(
        account_id=args.id, tier=Tier(args.tier), created_at=datetime.fromisoformat(args.created_at),
        name=args.name or args.id,
        settings=AccountSettings(reply_to_closed=ReplyToClosedPolicy(args.reply_to_closed)),
    )
    asyncio.run(publish(settings, [account]))
    print(account.model_dump_json())
    return 0


def _cmd_context(args: argparse.Namespace, settings: Settings) -> int:
    from storage.database import create_engine
    from ticketflow.context import conversation_context

    async def run() -> dict | None:
        engine = create_engine(settings.database_url, writer=False)
        try:
            return await conversation_context(engine, args.conversation_id)
        finally:
            await engine.dispose()

    found = asyncio.run(run())
    if found is None:
        print(f"no conversation {args.conversation_id}", file=sys.stderr)
        return 1
    print(json.dumps(found, indent=2, default=str))
    return 0


def _cmd_deadletters(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.deadletters import list_dead_letters, replay_dead_letter

    if args.action == "list":
        for line in asyncio.run(list_dead_letters(settings, args.limit)):
            print(line)
        return 0
    print(asyncio.run(replay_dead_letter(settings, args.partition, args.offset)))
    return 0


def _cmd_lag(_args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.observe import lag_report

    for group, topic, lag in asyncio.run(lag_report(settings)):
        print(f"{group:55} {topic:50} lag={lag}")
    return 0


def _cmd_schemas(args: argparse.Namespace, _settings: Settings) -> int:
    from contracts.schema import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def _cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.demo import run_demo

    return asyncio.run(run_demo(settings, keep_topics=args.keep_topics))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ticketflow", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO (DEBUG with -vv)")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("topics", help="provision the topic catalogue (idempotent) or list it")
    t.add_argument("action", choices=["apply", "list"])
    t.set_defaults(func=_cmd_topics)

    sub.add_parser("migrate", help="bring DATABASE_URL to the newest schema").set_defaults(func=_cmd_migrate)

    w = sub.add_parser("worker", help="run one worker until Ctrl-C")
    w.add_argument("name", choices=["inbound", "ticketing", "sync"])
    w.set_defaults(func=_cmd_worker)

    sub.add_parser("up", help="run all three workers in one process until Ctrl-C").set_defaults(func=_cmd_up)

    a = sub.add_parser("accounts", help="publish an account to the accounts topic")
    a.add_argument("action", choices=["put"])
    a.add_argument("--id", required=True)
    a.add_argument("--tier", required=True, choices=["free", "starter", "professional", "enterprise"])
    a.add_argument("--created-at", required=True, help="ISO date-time with zone, e.g. 2023-05-01T00:00:00+00:00")
    a.add_argument("--name")
    a.add_argument("--reply-to-closed", default="reopen", choices=["reopen", "new_conversation"])
    a.set_defaults(func=_cmd_accounts)

    c = sub.add_parser("context", help="Q1/Q2: a conversation's ticket, contact and previous conversations")
    c.add_argument("conversation_id")
    c.set_defaults(func=_cmd_context)

    d = sub.add_parser("deadletters", help="list the dead-letter topic, or replay one message to its topic")
    d.add_argument("action", choices=["list", "replay"])
    d.add_argument("--limit", type=int, default=50)
    d.add_argument("--partition", type=int, default=0)
    d.add_argument("--offset", type=int, default=0)
    d.set_defaults(func=_cmd_deadletters)

    sub.add_parser("lag", help="consumer lag of every worker group").set_defaults(func=_cmd_lag)

    s = sub.add_parser("schemas", help="write JSON Schema for every message")
    s.add_argument("--out", default="docs/schemas")
    s.set_defaults(func=_cmd_schemas)

    m = sub.add_parser("demo", help="a day in a support inbox, on the local broker and SQLite")
    m.add_argument("--keep-topics", action="store_true", help="keep this run's topics to inspect them with kcat")
    m.set_defaults(func=_cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = logging.WARNING if not args.verbose else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # FastStream warns at every start that it will not create topics: that is our intent.
        for worker in ("inbound", "ticketing", "sync"):
            logging.getLogger(f"ticketflow.{worker}.faststream").setLevel(logging.ERROR)
    return int(args.func(args, Settings.from_env()) or 0)


if __name__ == "__main__":
    sys.exit(main())
