"""The ACLs `ticketflow acls` generates (no broker): read from the workers' wiring, least privilege as the
issue asks, the same under any topic prefix, and printed as Strimzi KafkaUser resources that say the same."""

from __future__ import annotations

import pytest
import yaml

from contracts.topics import (
    ACCOUNTS,
    CONVERSATION_COMMANDS,
    CONVERSATION_COMMANDS_INTERNAL,
    CONVERSATION_EVENTS,
    DEADLETTER,
    INBOUND_MESSAGES,
    OUTBOUND_MESSAGES,
    REJECTIONS,
    TICKET_COMMANDS,
    TICKET_COMMANDS_INTERNAL,
    TICKET_EVENTS,
)
from tests.security.exposure import Exposure, clean_env, run_cli
from ticketflow.acls import (
    Acl,
    Operation,
    Pattern,
    Resource,
    generate,
    kafka_users,
    principals,
    touches_ticketflow,
    users_yaml,
)
from ticketflow.running import WORKERS, build_worker
from workers.settings import Settings

PREFIX = "tenant-a."
SETTINGS = Settings(topic_prefix=PREFIX)


def grants(user: str) -> dict[tuple[Resource, Operation], set[str]]:
    """(resource, operation) -> names (a trailing * for a prefix) of `user`'s generated ACLs."""
    found: dict[tuple[Resource, Operation], set[str]] = {}
    for acl in generate(SETTINGS):
        if acl.user == user:
            name = acl.name.removeprefix(PREFIX) + ("*" if acl.pattern is Pattern.PREFIXED else "")
            found.setdefault((acl.resource, acl.operation), set()).add(name)
    return found


TOPIC_READ, TOPIC_WRITE, GROUP_READ = (Resource.TOPIC, Operation.READ), (Resource.TOPIC, Operation.WRITE), \
    (Resource.GROUP, Operation.READ)


def test_the_inbound_worker_reads_its_inputs_and_groups_and_writes_its_publications():
    assert grants("inbound") == {
        TOPIC_READ: {INBOUND_MESSAGES, CONVERSATION_COMMANDS, CONVERSATION_COMMANDS_INTERNAL, ACCOUNTS},
        GROUP_READ: {"ticketflow.inbound.messages", "ticketflow.inbound.commands", "ticketflow.inbound.sync-commands",
                     "ticketflow.inbound.accounts"},
        TOPIC_WRITE: {CONVERSATION_EVENTS, REJECTIONS, OUTBOUND_MESSAGES, DEADLETTER},
    }


def test_the_ticketing_worker_likewise():
    assert grants("ticketing") == {
        TOPIC_READ: {TICKET_COMMANDS, TICKET_COMMANDS_INTERNAL, CONVERSATION_EVENTS, ACCOUNTS},
        GROUP_READ: {"ticketflow.ticketing.commands", "ticketflow.ticketing.sync-commands",
                     "ticketflow.ticketing.conversations", "ticketflow.ticketing.accounts"},
        TOPIC_WRITE: {TICKET_EVENTS, REJECTIONS, DEADLETTER},
    }


def test_the_sync_worker_reads_events_and_writes_only_the_internal_command_topics():
    assert grants("sync") == {
        TOPIC_READ: {TICKET_EVENTS, CONVERSATION_EVENTS},
        GROUP_READ: {"ticketflow.sync.ticket-events", "ticketflow.sync.conversation-events"},
        TOPIC_WRITE: {CONVERSATION_COMMANDS_INTERNAL, TICKET_COMMANDS_INTERNAL, DEADLETTER},
    }


def test_the_clients_write_public_commands_or_inbound_messages_and_read_under_their_group_prefix():
    assert grants("agents") == {TOPIC_WRITE: {CONVERSATION_COMMANDS, TICKET_COMMANDS}, TOPIC_READ: {REJECTIONS},
                                GROUP_READ: {"agents.*"}}
    assert grants("subscriber") == {TOPIC_READ: {CONVERSATION_EVENTS, TICKET_EVENTS, REJECTIONS, OUTBOUND_MESSAGES},
                                    GROUP_READ: {"subscriber.*"}}
    assert grants("channels") == {TOPIC_WRITE: {INBOUND_MESSAGES}, TOPIC_READ: {OUTBOUND_MESSAGES},
                                  GROUP_READ: {"channels.*"}}


def test_only_the_sync_worker_writes_the_internal_command_topics_and_nobody_gets_more_than_read_or_write():
    acls = generate(SETTINGS)
    internal = {SETTINGS.topic(CONVERSATION_COMMANDS_INTERNAL), SETTINGS.topic(TICKET_COMMANDS_INTERNAL)}
    assert {a.user for a in acls if a.name in internal and a.operation is Operation.WRITE} == {"sync"}
    assert {a.operation for a in acls} == {Operation.READ, Operation.WRITE}  # no IDEMPOTENT_WRITE, no ALL
    assert {a.resource for a in acls} == {Resource.TOPIC, Resource.GROUP}  # no CLUSTER ACL for anyone
    assert all(a.allow and a.host == "*" and a.name.startswith(PREFIX) for a in acls)
    assert "admin" not in {a.user for a in acls}  # the super user needs none


@pytest.mark.parametrize("worker", WORKERS)
def test_a_workers_acls_are_its_wiring(worker):
    """One source of truth: what the worker subscribes to and declares it publishes, nothing restated."""
    built = build_worker(worker, SETTINGS)
    mine = [a for a in generate(SETTINGS) if a.user == worker]
    assert {a.name for a in mine if a.resource is Resource.TOPIC and a.operation is Operation.READ} == \
        {topic for _purpose, topic in built.inputs}
    assert {a.name for a in mine if a.resource is Resource.GROUP} == \
        {SETTINGS.group(worker, purpose) for purpose, _topic in built.inputs}
    assert {a.name for a in mine if a.operation is Operation.WRITE} == set(built.outputs)


def test_the_strimzi_users_say_the_same_as_the_acls():
    docs = list(yaml.safe_load_all(users_yaml(kafka_users(generate(SETTINGS), "prod", "support"))))
    assert [d["metadata"]["name"] for d in docs] == principals()
    back = set()
    for doc in docs:
        assert doc["apiVersion"] == "kafka.strimzi.io/v1beta2" and doc["kind"] == "KafkaUser"
        assert doc["metadata"]["namespace"] == "support" and doc["metadata"]["labels"]["strimzi.io/cluster"] == "prod"
        assert doc["spec"]["authentication"] == {"type": "scram-sha-512"}
        assert doc["spec"]["authorization"]["type"] == "simple"
        for rule in doc["spec"]["authorization"]["acls"]:
            assert (rule["type"], rule["host"]) == ("allow", "*")
            pattern = Pattern.PREFIXED if rule["resource"]["patternType"] == "prefix" else Pattern.LITERAL
            for operation in rule["operations"]:
                back.add(Acl(f"User:{doc['metadata']['name']}", Resource[rule["resource"]["type"].upper()],
                             rule["resource"]["name"], pattern, Operation[operation.upper()]))
    assert back == set(generate(SETTINGS))


def test_acls_print_needs_no_broker(exposure: Exposure):
    env = clean_env(TICKETFLOW_TOPIC_PREFIX=PREFIX, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:9")  # nothing listens there
    printed = run_cli(exposure, env, "acls", "print")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines() == [a.line() for a in sorted(generate(SETTINGS),
                                                                    key=lambda a: (principals().index(a.user), a))]
    strimzi = run_cli(exposure, env, "acls", "print", "--strimzi", "--cluster", "prod")
    assert strimzi.returncode == 0, strimzi.stderr
    assert strimzi.stdout.startswith("# Generated by `ticketflow acls print --strimzi --cluster prod`")
    assert len(list(yaml.safe_load_all(strimzi.stdout))) == len(principals())


@pytest.mark.parametrize(("resource", "name", "pattern", "ours"), [
    (Resource.TOPIC, f"{PREFIX}ticketflow.ticket.events.v1", Pattern.LITERAL, True),
    (Resource.TOPIC, "*", Pattern.LITERAL, True),  # every topic: Ticketflow's too
    (Resource.TOPIC, f"{PREFIX}ticketflow.", Pattern.PREFIXED, True),
    (Resource.TOPIC, "tenant", Pattern.PREFIXED, True),
    (Resource.TOPIC, f"{PREFIX}billing.invoices", Pattern.LITERAL, False),
    (Resource.TOPIC, "ticketflow.ticket.events.v1", Pattern.LITERAL, False),  # another deployment's
    (Resource.GROUP, f"{PREFIX}ticketflow.inbound.messages", Pattern.LITERAL, True),
    (Resource.GROUP, f"{PREFIX}subscriber.sla", Pattern.LITERAL, True),
    (Resource.GROUP, f"{PREFIX}sub", Pattern.PREFIXED, True),
    (Resource.GROUP, "*", Pattern.LITERAL, True),
    (Resource.GROUP, f"{PREFIX}billing", Pattern.PREFIXED, False),
    (Resource.CLUSTER, "kafka-cluster", Pattern.LITERAL, False),
])
def test_drift_is_any_acl_on_ticketflows_topics_or_groups(resource, name, pattern, ours):
    acl = Acl("User:someone", resource, name, pattern, Operation.WRITE)
    assert touches_ticketflow(SETTINGS, acl) is ours
