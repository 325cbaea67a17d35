"""`ticketflow`: operate Ticketflow (topics, ACLs, workers, accounts, context, dead letters, skips, outbox, lag, schemas).

Exit codes: 0 done; 1 the operation failed (topic creation refused, drift, no such record, refused
skip, refused replays); 2 usage or configuration; 3 Kafka unreachable; 4 database unreachable;
70 a worker stopped for good (its log says why).
Every failure is one line on stderr (-v for library logs, -vv for DEBUG and tracebacks)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ticketflow.errors import EXIT_FAILED, EXIT_USAGE, classify
from workers.settings import Settings, masked_url, settings_error

if TYPE_CHECKING:
    from ticketflow.deadletters import Selection
    from ticketflow.provisioning import ApplyReport

log = logging.getLogger("ticketflow.cli")

LONG_RUNNING = ("worker", "up")
"""Commands whose library logs stay on without -v: they report the broker's and database's health."""


def _cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.provisioning import apply_topics, check_topics, topic_states

    if args.action == "export":
        return _export_topics(args, settings)
    if args.action == "list":
        for state in asyncio.run(topic_states(settings)):
            print(state.line(settings.replication_factor))
        return 0
    report = asyncio.run(check_topics(settings) if args.check else apply_topics(settings))
    return _reported(report, "topics apply --check" if args.check else "topics apply")


def _reported(report: ApplyReport, what: str) -> int:
    """Print an apply report; exit 0 when it is ok, else 1 with a one-line summary on stderr."""
    print("\n".join(report.lines()))
    if report.ok:
        return 0
    return _fail(f"{what}: {report.summary()} (see the MISSING, DRIFT and FAILED lines above)", EXIT_FAILED)


def _export_topics(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.strimzi import kafka_topics, to_yaml

    replicas = args.replicas or settings.replication_factor
    shown = f" --replicas {replicas} --cluster {args.cluster}" + (f" --namespace {args.namespace}" if args.namespace else "")
    text = to_yaml(kafka_topics(settings.topic_prefix, replicas, args.cluster, args.namespace), shown)
    if args.out:
        Path(args.out).write_text(text)
        print(args.out)
    else:
        print(text, end="")
    return 0


def _cmd_acls(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.acls import apply_acls, generate, kafka_users, matrix_lines, users_yaml

    if args.action == "print":
        if args.strimzi:
            shown = f" --cluster {args.cluster}" + (f" --namespace {args.namespace}" if args.namespace else "")
            print(users_yaml(kafka_users(generate(settings), args.cluster, args.namespace), shown), end="")
        else:
            print("\n".join(matrix_lines(generate(settings))))
        return 0
    report = asyncio.run(apply_acls(settings, check=args.check))
    return _reported(report, "acls apply --check" if args.check else "acls apply")


def _cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from storage.migrate import upgrade
    from storage.roles import RoleError, RoleSettings, apply_roles

    try:
        roles = RoleSettings.from_env() if args.roles else None
    except RoleError as exc:
        return _fail(f"configuration: {exc}", EXIT_USAGE)
    upgrade(settings.database_url)
    print(f"database at head: {masked_url(settings.database_url)}")
    if roles is not None:
        try:
            for line in asyncio.run(apply_roles(settings.database_url, roles)):
                print(line)
        except RoleError as exc:
            return _fail(f"migrate --roles: {exc}", EXIT_FAILED)
    return 0


def _cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.running import run_until_stopped

    return asyncio.run(run_until_stopped(settings, (args.name,)))


def _cmd_up(_args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.running import WORKERS, run_until_stopped

    return asyncio.run(run_until_stopped(settings, WORKERS))


def _cmd_accounts(args: argparse.Namespace, settings: Settings) -> int:
    from contracts.accounts import Account, AccountSettings
    from contracts.common import ReplyToClosedPolicy, Tier
    from ticketflow.publishing import publish

    account = Account(
        account_id=args.id, tier=Tier(args.tier), created_at=args.created_at,
        name=args.name or args.id,
        settings=AccountSettings(reply_to_closed=ReplyToClosedPolicy(args.reply_to_closed)),
    )
    asyncio.run(publish(settings, [account]))
    print(account.model_dump_json())
    return 0


def _cmd_context(args: argparse.Namespace, settings: Settings) -> int:
    from readmodel.context import conversation_context
    from storage.database import create_engine

    async def run() -> dict[str, Any] | None:
        engine = create_engine(settings.database_url, writer=False)
        try:
            return await conversation_context(engine, args.conversation_id)
        finally:
            await engine.dispose()

    found = asyncio.run(run())
    if found is None:
        return _fail(f"no conversation {args.conversation_id}", EXIT_FAILED)
    print(json.dumps(found, indent=2, default=str))
    return 0


def _selection(args: argparse.Namespace, settings: Settings) -> Selection:
    from ticketflow.deadletters import Selection
    from ticketflow.operator_kafka import deployed_topic

    topic = deployed_topic(settings, args.topic) if args.topic else None
    return Selection(reason=args.reason, topic=topic, since=args.since)


def _cmd_deadletters_list(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.deadletters import list_dead_letters

    for line in asyncio.run(list_dead_letters(settings, _selection(args, settings), args.limit, args.json)):
        print(line)
    return 0


def _cmd_deadletters_replay(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.deadletters import replay_dead_letter, replay_matching

    if args.reason is None:
        print(asyncio.run(replay_dead_letter(settings, args.partition, args.offset)))
        return 0
    refused = asyncio.run(replay_matching(settings, _selection(args, settings), args.dry_run,
                                          lambda line: print(line, flush=True)))
    return _fail(f"{refused} matching dead letters were refused (see above)", EXIT_FAILED) if refused else 0


def _cmd_skip(args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.operator_kafka import deployed_topic
    from ticketflow.skipping import skip_record

    topic = deployed_topic(settings, args.topic)
    print(asyncio.run(skip_record(settings, args.group, topic, args.partition, args.offset, args.note)))
    return 0


def _cmd_lag(_args: argparse.Namespace, settings: Settings) -> int:
    from ticketflow.lag import lag_report
    from ticketflow.operator_kafka import retry_while_coordinator_loads

    for group, topic, lag in asyncio.run(retry_while_coordinator_loads(lambda: lag_report(settings))):
        print(f"{group:55} {topic:50} lag={lag}")
    return 0


def _cmd_schemas(args: argparse.Namespace, _settings: Settings) -> int:
    from contracts.schema import write_schemas

    for path in write_schemas(Path(args.out)):
        print(path)
    return 0


def _aware_time(text: str) -> datetime:
    """An argparse type: an ISO date-time with a zone (a time without one is ambiguous)."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no zone; add one, e.g. {text}+00:00")
    return parsed


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _add_topics(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("topics", help="provision the topic catalogue (idempotent), check it, or ask the broker about it")
    actions = t.add_subparsers(dest="action", required=True)
    apply = actions.add_parser("apply", help="create missing catalogue topics; exit 1 on any refused topic or drift")
    apply.add_argument("--check", action="store_true",
                       help="change nothing: exit 1 if a topic is missing or drifted, 0 when all match the catalogue")
    actions.add_parser("list", help="each catalogue topic as the broker has it: exists?, partitions, replication, drift")
    export = actions.add_parser(
        "export", help="write the catalogue as deployment resources (Strimzi KafkaTopic YAML); no broker needed",
        epilog="example: ticketflow topics export --format strimzi --replicas 3 --cluster ticketflow "
               "--out deploy/k8s/kafka-topics.yaml")
    export.add_argument("--format", choices=["strimzi"], default="strimzi",
                        help="strimzi: KafkaTopic resources (kafka.strimzi.io/v1beta2) for the Topic Operator")
    export.add_argument("--replicas", type=int, help="replication factor (default TICKETFLOW_REPLICATION_FACTOR; "
                                                     "3 adds min.insync.replicas=2)")
    export.add_argument("--cluster", default="ticketflow", help="the Strimzi Kafka cluster (strimzi.io/cluster label)")
    export.add_argument("--namespace", help="metadata.namespace of every resource (default: none, kubectl's)")
    export.add_argument("--out", help="write to this file instead of stdout")
    t.set_defaults(func=_cmd_topics)


def _add_acls(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("acls", help="Kafka ACLs per worker and client principal, generated from the workers' wiring")
    actions = a.add_subparsers(dest="action", required=True)
    apply = actions.add_parser("apply", help="create the missing ACLs (as the admin principal); exit 1 on any refused "
                                             "ACL or drift (ACLs on Ticketflow's topics and groups it does not generate)")
    apply.add_argument("--check", action="store_true", help="change nothing: exit 1 if an ACL is missing or drifted")
    show = actions.add_parser("print", help="the ACLs, one per line (no broker needed)")
    show.add_argument("--strimzi", action="store_true",
                      help="as Strimzi KafkaUser resources (kafka.strimzi.io/v1beta2, scram-sha-512, simple authorization)")
    show.add_argument("--cluster", default="ticketflow", help="with --strimzi: the strimzi.io/cluster label")
    show.add_argument("--namespace", help="with --strimzi: metadata.namespace of every resource")
    a.set_defaults(func=_cmd_acls)


def _add_workers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("migrate", help="bring DATABASE_URL to the newest schema")
    m.add_argument("--roles", action="store_true",
                   help="also create or update one PostgreSQL role per worker and a read-only role, with their "
                        "grants and row-level security (PostgreSQL; the owner needs CREATEROLE; passwords from "
                        "TICKETFLOW_DB_INBOUND_PASSWORD, TICKETFLOW_DB_TICKETING_PASSWORD, TICKETFLOW_DB_READER_PASSWORD)")
    m.set_defaults(func=_cmd_migrate)
    w = sub.add_parser("worker", help="run one worker until Ctrl-C")
    w.add_argument("name", choices=["inbound", "ticketing", "sync"], help="which worker to run")
    w.set_defaults(func=_cmd_worker)
    sub.add_parser("up", help="run all three workers in one process until Ctrl-C").set_defaults(func=_cmd_up)


def _add_accounts(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser("accounts", help="publish an account to the accounts topic")
    a.add_argument("action", choices=["put"], help="put: publish (create or replace) the account")
    a.add_argument("--id", required=True, help="the account id (the accounts topic's key)")
    a.add_argument("--tier", required=True, choices=["free", "starter", "professional", "enterprise"],
                   help="the account's plan tier")
    a.add_argument("--created-at", required=True, type=_aware_time,
                   help="ISO date-time with zone, e.g. 2023-05-01T00:00:00+00:00")
    a.add_argument("--name", help="display name (default: the id)")
    a.add_argument("--reply-to-closed", default="reopen", choices=["reopen", "new_conversation"],
                   help="what a contact's message on a closed conversation does (default: reopen)")
    a.set_defaults(func=_cmd_accounts)
    c = sub.add_parser("context", help="Q1/Q2: a conversation's ticket, contact and previous conversations")
    c.add_argument("conversation_id", help="the conversation's id")
    c.set_defaults(func=_cmd_context)


def _add_selection(p: argparse.ArgumentParser, reason_help: str) -> None:
    p.add_argument("--reason", help=reason_help)
    p.add_argument("--topic", help="only dead letters from this original topic (a catalogue name such as "
                                   "ticketflow.inbound.messages.v1 gets TICKETFLOW_TOPIC_PREFIX; else the full name)")
    p.add_argument("--since", type=_aware_time,
                   help="only dead letters with dlq_time at or after this ISO date-time with zone")


def _add_deadletters(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("deadletters", help="list the dead-letter topic, or replay dead letters to where they came from")
    actions = d.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="dead letters, newest first, with origin and reason")
    _add_selection(ls, "only dead letters with this dlq_reason (e.g. not_json, unknown_account)")
    ls.add_argument("--limit", type=_non_negative, default=50, help="show at most this many (default 50)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    ls.set_defaults(func=_cmd_deadletters_list)
    r = actions.add_parser(
        "replay", help="republish to the original topic AND partition, original key, value and headers",
        description="Either one record (--partition and --offset, both required) or every dead letter with "
                    "--reason (optionally narrowed by --topic and --since; --dry-run lists them). Truncated "
                    "dead letters (dlq_truncated=true) are refused.")
    r.add_argument("--partition", type=_non_negative, help="the dead letter's partition on the dead-letter topic")
    r.add_argument("--offset", type=_non_negative, help="the dead letter's offset on the dead-letter topic")
    _add_selection(r, "replay every dead letter with this dlq_reason (instead of --partition/--offset)")
    r.add_argument("--dry-run", action="store_true", help="with --reason: list what would be replayed, send nothing")
    r.set_defaults(func=_cmd_deadletters_replay, validate=lambda args: _validate_replay(r, args))


def _validate_replay(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    one = args.partition is not None or args.offset is not None
    if args.reason is not None and one:
        p.error("give either --partition/--offset or --reason, not both")
    if args.reason is None and (args.partition is None or args.offset is None):
        p.error("--partition and --offset are both required (or --reason for a bulk replay)")
    if args.reason is None and (args.topic or args.since or args.dry_run):
        p.error("--topic, --since and --dry-run go with --reason")


def _cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    from storage.database import create_engine
    from ticketflow.outbox import discard_parked, parked_rows, retry_parked

    async def run() -> int:
        engine = create_engine(settings.database_url, writer=args.action != "list")
        try:
            if args.action == "list":
                rows = await parked_rows(engine, args.worker)
                for row in rows:
                    print(row.line())
                print(f"{len(rows)} parked row(s)")
                return 0
            if args.action == "retry":
                done = await retry_parked(engine, args.id)
            else:
                done = await discard_parked(engine, args.id, args.reason)
            if not done:
                return _fail(f"outbox {args.action}: no parked row #{args.id}", EXIT_FAILED)
            print(f"outbox row #{args.id}: {'handed back to the relay' if args.action == 'retry' else 'discarded'}")
            return 0
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _add_outbox(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    o = sub.add_parser("outbox", help="parked outbox rows (events the broker can never take): list, retry, discard",
                       description="A parked row holds back the later rows of its topic and key (ADR 8).")
    actions = o.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="parked rows, oldest first, with how many rows of their key wait behind them")
    ls.add_argument("--worker", choices=["inbound", "ticketing"], help="only this worker's rows")
    retry = actions.add_parser("retry", help="hand a parked row back to the relay (after fixing the cause)")
    retry.add_argument("id", type=_non_negative, help="the row id `outbox list` shows (#ID)")
    discard = actions.add_parser("discard", help="give a parked row up: never published; the rows behind it leave")
    discard.add_argument("id", type=_non_negative, help="the row id `outbox list` shows (#ID)")
    discard.add_argument("--reason", required=True, help="why (kept in the row's failure text)")
    o.set_defaults(func=_cmd_outbox)


def _add_operations(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    k = sub.add_parser(
        "skip", help="move a stopped consumer group past the one record it is stuck on, dead-lettering it first",
        description="Copies TOPIC[PARTITION]@OFFSET to the dead-letter topic (reason skipped_by_operator), then "
                    "commits OFFSET+1 for GROUP on that partition. OFFSET must be the group's current offset there, "
                    "and the group's consumers must be stopped.")
    k.add_argument("--group", required=True, help="the consumer group, e.g. ticketflow.inbound.messages")
    k.add_argument("--topic", required=True, help="the topic (a catalogue name gets TICKETFLOW_TOPIC_PREFIX)")
    k.add_argument("--partition", required=True, type=_non_negative, help="the partition the group is stuck on")
    k.add_argument("--offset", required=True, type=_non_negative,
                   help="the record to skip: must be the group's current committed offset on that partition")
    k.add_argument("--note", help="why it was skipped (stored as dlq_detail)")
    k.set_defaults(func=_cmd_skip)
    sub.add_parser("lag", help="consumer lag of every worker group").set_defaults(func=_cmd_lag)
    s = sub.add_parser("schemas", help="write JSON Schema for every message")
    s.add_argument("--out", default="docs/schemas", help="the folder to write into (default docs/schemas)")
    s.set_defaults(func=_cmd_schemas)


def parser() -> argparse.ArgumentParser:
    """The `ticketflow` command line (every option has help text)."""
    p = argparse.ArgumentParser(prog="ticketflow", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="-v: INFO and library logs; -vv: DEBUG and tracebacks of failures")
    p.add_argument("--log-format", choices=["plain", "json"],
                   help="plain lines (default) or one JSON object per line (default: TICKETFLOW_LOG_FORMAT)")
    sub = p.add_subparsers(dest="command", required=True)
    _add_topics(sub)
    _add_acls(sub)
    _add_workers(sub)
    _add_accounts(sub)
    _add_deadletters(sub)
    _add_operations(sub)
    _add_outbox(sub)
    _add_examples(sub)
    return p


EXAMPLES: dict[str, str] = {
    "topics": "ticketflow topics apply\n  ticketflow topics apply --check\n  ticketflow topics list\n"
              "  ticketflow topics export --format strimzi > deploy/k8s/kafka-topics.yaml",
    "acls": "ticketflow acls print\n  ticketflow acls apply --check\n"
            "  ticketflow acls apply   # as admin (KAFKA_USERNAME=admin)\n"
            "  ticketflow acls print --strimzi --cluster ticketflow > kafka-users.yaml",
    "migrate": "DATABASE_URL=postgresql+asyncpg://tf:***@db:5432/tf ticketflow migrate\n"
               "  TICKETFLOW_DB_INBOUND_PASSWORD=... TICKETFLOW_DB_TICKETING_PASSWORD=... "
               "TICKETFLOW_DB_READER_PASSWORD=... ticketflow migrate --roles",
    "worker": "ticketflow worker inbound\n  TICKETFLOW_HTTP_PORT=9464 ticketflow --log-format json worker ticketing",
    "up": "ticketflow up",
    "accounts": "ticketflow accounts put --id acme --tier starter --created-at 2021-01-01T00:00:00+00:00",
    "context": "ticketflow context 2b8f6a1e-8c1d-4e0e-9d7a-3f6b5c2d1a00",
    "deadletters": "ticketflow deadletters list --reason not_json --since 2026-11-25T00:00:00+00:00 --json\n"
                   "  ticketflow deadletters replay --partition 1 --offset 42\n"
                   "  ticketflow deadletters replay --reason unknown_account --dry-run",
    "skip": "ticketflow skip --group ticketflow.inbound.messages --topic ticketflow.inbound.messages.v1 "
            "--partition 3 --offset 1234 --note 'wedged by a bug, see INC-12'",
    "lag": "ticketflow lag",
    "schemas": "ticketflow schemas --out docs/schemas",
    "outbox": "ticketflow outbox list --worker inbound\n  ticketflow outbox retry 4711\n"
              "  ticketflow outbox discard 4711 --reason 'over 1 MB, fixed in the producer'",
}
"""Examples shown at the end of each subcommand's --help."""


def _add_examples(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, parser_ in sub.choices.items():
        if name in EXAMPLES:
            parser_.epilog = "examples:\n  " + EXAMPLES[name]
            parser_.formatter_class = argparse.RawDescriptionHelpFormatter


def _configure_logging(verbosity: int, command: str, fmt: str) -> None:
    from workers.observability.logs import configure_logging, level_for

    configure_logging(level_for(verbosity), fmt)
    if verbosity:
        return
    # FastStream warns at every start that it will not create topics: that is our intent.
    for worker in ("inbound", "ticketing", "sync"):
        logging.getLogger(f"ticketflow.{worker}.faststream").setLevel(logging.ERROR)
    if command not in LONG_RUNNING:
        # A one-shot command reports its own failure in one line; the clients' connection logs would repeat it.
        for library in ("aiokafka", "asyncio"):
            logging.getLogger(library).setLevel(logging.CRITICAL)


def _fail(message: str, code: int) -> int:
    print(f"ticketflow: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Run one `ticketflow` command; returns its exit code (see the module docstring)."""
    args = parser().parse_args(argv)
    if getattr(args, "validate", None):
        args.validate(args)
    log_format = args.log_format or os.environ.get("TICKETFLOW_LOG_FORMAT") or "plain"
    if log_format not in ("plain", "json"):
        return _fail(f"configuration: TICKETFLOW_LOG_FORMAT={log_format!r}: choose plain or json", EXIT_USAGE)
    _configure_logging(args.verbose, args.command, log_format)
    try:
        settings = Settings.from_env()
    except ValidationError as exc:
        return _fail(f"configuration: {settings_error(exc)}", EXIT_USAGE)
    except ValueError as exc:
        return _fail(f"configuration: {exc}", EXIT_USAGE)
    try:
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        failure = classify(exc, settings)
        if failure is None:
            raise
        log.debug("%s failed", args.command, exc_info=True)
        return _fail(failure.message, failure.exit_code)


if __name__ == "__main__":
    sys.exit(main())
