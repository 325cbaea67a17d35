"""`ticketflow acls apply|print`: least privilege on Kafka, one principal per worker and per kind of client.

One source of truth: a worker's ACLs are read from its own wiring, by building it
(`ticketflow.running.build_worker` opens no connection): READ on each input topic (`Worker.inputs`) and on
that input's consumer group (`settings.group(worker, purpose)`), WRITE on each topic it publishes
(`Worker.outputs`: its declared publications and the dead-letter topic). The principals outside the workers
(`CLIENTS`) are declared here with the catalogue's names. READ and WRITE imply DESCRIBE, which is all the
metadata the clients ask for; no principal gets a CLUSTER ACL (an idempotent producer needs WRITE on some
topic, not IDEMPOTENT_WRITE, since Kafka 3.0), and everyone else is refused
(`allow.everyone.if.no.acl.found=false`; `admin` is the operations super user).

aiokafka 0.14's admin client has no ACL methods, so `apply_acls` sends Kafka's own CreateAcls (v1) and
DescribeAcls (v1) requests, built from aiokafka's protocol classes, over the admin client's connection.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest_v1, DescribeAclsRequest
from aiokafka.protocol.api import Request

from contracts.topics import (
    CATALOGUE,
    CONVERSATION_EVENTS,
    INBOUND_MESSAGES,
    INTERNAL,
    OUTBOUND_MESSAGES,
    REJECTIONS,
    TICKET_EVENTS,
)
from ticketflow.operator_kafka import admin_client
from ticketflow.provisioning import ApplyReport
from ticketflow.running import WORKERS, build_worker
from workers.settings import Settings

VISIBLE_SECONDS = 30.0
"""How long `apply` waits for created ACLs to show in the brokers' answers (they take effect then)."""


class Resource(IntEnum):
    """Kafka's ResourceType codes."""

    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class Pattern(IntEnum):
    """Kafka's PatternType codes."""

    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    """Kafka's AclOperation codes."""

    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


ALLOW, DENY = 3, 2
"""Kafka's AclPermissionType codes."""


@dataclass(frozen=True, order=True)
class Acl:
    """One ACL binding: `principal` (`User:NAME`) may (or, `allow=False`, may not) `operation` on a resource."""

    principal: str
    resource: Resource
    name: str
    pattern: Pattern
    operation: Operation
    allow: bool = True
    host: str = "*"

    @property
    def user(self) -> str:
        """The principal's user name (`inbound` for `User:inbound`)."""
        return self.principal.removeprefix("User:")

    def line(self) -> str:
        """One readable line: `User:inbound  ALLOW READ  topic ticketflow.inbound.messages.v1`."""
        name = f"{self.name}*" if self.pattern is Pattern.PREFIXED else self.name
        where = "" if self.host == "*" else f" from {self.host}"
        return (f"{self.principal:16} {'ALLOW' if self.allow else 'DENY':5} {self.operation.name:9} "
                f"{self.resource.name.lower():5} {name}{where}")


@dataclass(frozen=True)
class Client:
    """A principal outside the workers: the topics it writes and reads, and the prefix of its consumer groups."""

    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    group_prefix: str = ""


CLIENTS: dict[str, Client] = {
    "agents": Client(writes=tuple(INTERNAL), reads=(REJECTIONS,), group_prefix="agents."),
    "subscriber": Client(reads=(CONVERSATION_EVENTS, TICKET_EVENTS, REJECTIONS, OUTBOUND_MESSAGES),
                         group_prefix="subscriber."),
    "channels": Client(writes=(INBOUND_MESSAGES,), reads=(OUTBOUND_MESSAGES,), group_prefix="channels."),
}
"""agents: the agents' tools send the public commands (never the internal ones, ADR 10) and read their
rejections; subscriber: read-only services (events, rejections, outbound messages); channels: the upstream
channels publish inbound messages and deliver the outbound ones. Their consumer groups start with the
prefix (after TICKETFLOW_TOPIC_PREFIX), e.g. `subscriber.sla-timers`. The accounts topic has no client
principal: `ticketflow accounts put` runs as admin."""


def _user(name: str) -> str:
    return f"User:{name}"


def worker_acls(settings: Settings, name: str) -> list[Acl]:
    """The ACLs of worker `name` (principal `User:<name>`), read from its wiring."""
    worker = build_worker(name, settings)
    who = _user(name)
    acls = set()
    for purpose, topic in worker.inputs:
        acls.add(Acl(who, Resource.TOPIC, topic, Pattern.LITERAL, Operation.READ))
        acls.add(Acl(who, Resource.GROUP, settings.group(worker.name, purpose), Pattern.LITERAL, Operation.READ))
    for topic in worker.outputs:
        acls.add(Acl(who, Resource.TOPIC, topic, Pattern.LITERAL, Operation.WRITE))
    return sorted(acls)


def client_acls(settings: Settings, name: str, client: Client) -> list[Acl]:
    """The ACLs of an outside principal."""
    who = _user(name)
    acls = [Acl(who, Resource.TOPIC, settings.topic(t), Pattern.LITERAL, Operation.WRITE) for t in client.writes]
    acls += [Acl(who, Resource.TOPIC, settings.topic(t), Pattern.LITERAL, Operation.READ) for t in client.reads]
    if client.reads:
        acls.append(Acl(who, Resource.GROUP, settings.topic(client.group_prefix), Pattern.PREFIXED, Operation.READ))
    return sorted(acls)


def generate(settings: Settings) -> list[Acl]:
    """Every ACL Ticketflow's principals need, for this deployment's topic prefix."""
    acls = [a for name in WORKERS for a in worker_acls(settings, name)]
    acls += [a for name, client in CLIENTS.items() for a in client_acls(settings, name, client)]
    return sorted(acls)


def principals() -> list[str]:
    """The user names the ACLs are for (SCRAM users `deploy/kafka/kafka.sh secure-start` creates)."""
    return [*WORKERS, *CLIENTS]


# ----------------------------------------------------------------------------- whose resources

def _matches(acl: Acl, name: str) -> bool:
    """Whether `acl`'s resource pattern covers the resource `name`."""
    if acl.pattern is Pattern.PREFIXED:
        return name.startswith(acl.name)
    return acl.name in (name, "*")


def _overlaps(acl: Acl, prefix: str) -> bool:
    """Whether `acl`'s pattern covers some name starting with `prefix`."""
    if acl.pattern is Pattern.PREFIXED:
        return acl.name.startswith(prefix) or prefix.startswith(acl.name)
    return acl.name == "*" or acl.name.startswith(prefix)


def touches_ticketflow(settings: Settings, acl: Acl) -> bool:
    """Whether `acl` grants or denies something on Ticketflow's topics or consumer groups."""
    if acl.resource is Resource.TOPIC:
        return any(_matches(acl, settings.topic(spec.name)) for spec in CATALOGUE)
    if acl.resource is Resource.GROUP:
        namespaces = [settings.topic("ticketflow.")] + [settings.topic(c.group_prefix) for c in CLIENTS.values()]
        return any(_overlaps(acl, ns) for ns in namespaces)
    return False


# ----------------------------------------------------------------------------- the broker

class _CreateAcls(Request[CreateAclsRequest_v1]):  # type: ignore[misc]  # aiokafka ships no type hints
    """CreateAcls with many creations in one request (aiokafka's CreateAclsRequest sends one)."""

    API_KEY = 30

    def __init__(self, acls: list[Acl]) -> None:
        self._acls = acls

    def build(self, request_struct_class: type[CreateAclsRequest_v1]) -> CreateAclsRequest_v1:
        return request_struct_class([(a.resource, a.name, a.pattern, a.principal, a.host, a.operation,
                                      ALLOW if a.allow else DENY) for a in self._acls])


async def _send(admin: AIOKafkaAdminClient, request: Any, node: int | None = None) -> Any:
    """One request to broker `node` (any when None) over the admin client's connection (aiokafka has no
    public ACL methods)."""
    return await admin._send_request(request, node)


async def describe_acls(admin: AIOKafkaAdminClient, node: int | None = None) -> set[Acl]:
    """Every ACL the cluster holds, as broker `node` (any when None) knows them (raises the broker's error,
    e.g. SecurityDisabledError without an authorizer)."""
    everything = DescribeAclsRequest(Resource.ANY, None, Pattern.ANY, None, None, Operation.ANY, 1)
    response = await _send(admin, everything, node)
    if response.error_code:
        raise for_code(response.error_code)(response.error_message or "DescribeAcls refused")
    found = set()
    for resource_type, resource_name, pattern_type, entries in response.resources:
        for principal, host, operation, permission in entries:
            try:
                found.add(Acl(principal, Resource(resource_type), resource_name, Pattern(pattern_type),
                              Operation(operation), permission == ALLOW, host))
            except ValueError:  # a kind of ACL newer than this code: not one Ticketflow makes
                continue
    return found


async def _create(admin: AIOKafkaAdminClient, acls: list[Acl], report: ApplyReport) -> None:
    response = await _send(admin, _CreateAcls(acls))
    for acl, (code, message) in zip(acls, response.creation_responses, strict=True):
        if code:
            report.failed.append(f"{acl.line()}: {for_code(code).__name__}: {message or 'no detail from the broker'}")
        else:
            report.created.append(acl.line())


async def _await_visible(admin: AIOKafkaAdminClient, wanted: set[Acl]) -> set[Acl]:
    """Until every broker answers with every ACL in `wanted` (each broker takes created ACLs from the
    metadata log, in its own time); the ones some broker still lacks after VISIBLE_SECONDS."""
    deadline = asyncio.get_running_loop().time() + VISIBLE_SECONDS
    while True:
        missing: set[Acl] = set()
        for node in sorted(b.nodeId for b in admin._client.cluster.brokers()):
            missing |= wanted - await describe_acls(admin, node)
        if not missing or asyncio.get_running_loop().time() > deadline:
            return missing
        await asyncio.sleep(0.2)


async def apply_acls(settings: Settings, check: bool = False) -> ApplyReport:
    """Create the generated ACLs the cluster lacks (none twice), as the configured (admin) principal, and
    report drift: ACLs on Ticketflow's topics and groups the generator does not produce (never deleted).
    `check`: create nothing, report missing ACLs instead."""
    wanted = generate(settings)
    report = ApplyReport(checked_only=check)
    async with admin_client(settings.kafka) as admin:
        present = await describe_acls(admin)
        missing = [a for a in wanted if a not in present]
        report.unchanged += [a.line() for a in wanted if a in present]
        report.drift += [f"{a.line()}  (not generated by Ticketflow)" for a in sorted(present - set(wanted))
                         if touches_ticketflow(settings, a)]
        if check:
            report.missing += [a.line() for a in missing]
            return report
        if missing:
            await _create(admin, missing, report)
            created = {a for a in missing if a.line() in report.created}
            for acl in sorted(await _await_visible(admin, created)):
                report.created.remove(acl.line())
                report.failed.append(f"{acl.line()}: created, but not in the brokers' answers after "
                                     f"{VISIBLE_SECONDS:.0f}s")
    return report


# ----------------------------------------------------------------------------- printing

def matrix_lines(acls: list[Acl]) -> list[str]:
    """The ACLs, one per line, by principal."""
    return [a.line() for a in sorted(acls, key=lambda a: (principals().index(a.user), a))]


STRIMZI_OPERATIONS = {Operation.READ: "Read", Operation.WRITE: "Write", Operation.DESCRIBE: "Describe",
                      Operation.IDEMPOTENT_WRITE: "IdempotentWrite", Operation.ALL: "All"}


def kafka_users(acls: list[Acl], cluster: str = "ticketflow", namespace: str | None = None) -> list[dict[str, Any]]:
    """The ACLs as Strimzi `KafkaUser` resources (kafka.strimzi.io/v1beta2), one per principal, SCRAM-SHA-512:
    the User Operator creates the user and its password Secret (named like the user) and the ACLs."""
    by_user: dict[str, dict[tuple[str, str, str], list[str]]] = defaultdict(lambda: defaultdict(list))
    for acl in acls:
        pattern = "prefix" if acl.pattern is Pattern.PREFIXED else "literal"
        by_user[acl.user][(acl.resource.name.lower(), acl.name, pattern)].append(STRIMZI_OPERATIONS[acl.operation])
    users = []
    for user in sorted(by_user, key=principals().index):
        metadata: dict[str, Any] = {"name": user}
        if namespace:
            metadata["namespace"] = namespace
        metadata["labels"] = {"strimzi.io/cluster": cluster, "app.kubernetes.io/part-of": "ticketflow"}
        rules = [{"resource": {"type": kind, "name": name, "patternType": pattern}, "type": "allow",
                  "host": "*", "operations": sorted(ops)} for (kind, name, pattern), ops in sorted(by_user[user].items())]
        users.append({"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaUser", "metadata": metadata,
                      "spec": {"authentication": {"type": "scram-sha-512"},
                               "authorization": {"type": "simple", "acls": rules}}})
    return users


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """Block-style YAML for nested dicts and lists; scalars as JSON (valid YAML)."""
    pad = "  " * indent
    lines = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        lead = f"{pad}{key}:" if isinstance(value, dict) else f"{pad}-"
        if isinstance(item, dict | list) and item:
            if isinstance(value, list) and isinstance(item, dict):
                nested = _yaml(item, indent + 1)
                lines.append(f"{lead} {nested[0].lstrip()}")
                lines += nested[1:]
            else:
                lines.append(lead)
                lines += _yaml(item, indent + 1)
        else:
            lines.append(f"{lead} {json.dumps(item)}")
    return lines


def users_yaml(users: list[dict[str, Any]], shown: str = "") -> str:
    """The KafkaUser resources as one multi-document YAML file, with a header naming the command."""
    header = (f"# Generated by `ticketflow acls print --strimzi{shown}` from the workers' wiring and "
              "ticketflow/acls.py.\n# Do not edit: change the wiring and generate again.\n")
    return header + "".join("---\n" + "\n".join(_yaml(user)) + "\n" for user in users)
