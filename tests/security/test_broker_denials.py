"""What the secured broker refuses, with the ACLs `ticketflow acls apply` generated and nothing else: for every
principal and every catalogue topic, a produce, a fetch and a describe are allowed exactly where the
generated ACLs say and refused with TopicAuthorizationFailedError everywhere else; consumer groups likewise
(GroupAuthorizationFailedError); a forged internal command from the agents' tools never reaches the topic;
no credentials, wrong credentials, no TLS or an untrusted certificate get no connection at all.

These run on a topic prefix of their own (no worker consumes it), so the records they write disturb nothing."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)
from aiokafka.protocol.admin import DeleteAclsRequest

from contracts import commands as c
from contracts.topics import CATALOGUE, TICKET_COMMANDS_INTERNAL, TICKET_EVENTS
from tests.security.attempts import describe_each, end_offset, fetch_each, join_group, produce_each, refused
from tests.security.broker import SecureKafka
from tests.security.exposure import Exposure, clean_env, run_cli
from ticketflow.acls import CLIENTS, Acl, Operation, Pattern, Resource, apply_acls, generate
from ticketflow.operator_kafka import admin_client
from ticketflow.provisioning import apply_topics, delete_topics_under
from ticketflow.running import WORKERS, build_worker
from workers.delivery.outgoing import outgoing
from workers.kafka import KafkaAccess
from workers.settings import Settings

pytestmark = pytest.mark.kafka

NON_ADMIN = (*WORKERS, *CLIENTS)
WRITERS = (*WORKERS, "agents", "channels")
"""Every principal but `subscriber` writes somewhere (checked against the generated ACLs below)."""


@pytest.fixture(scope="module")
async def denials(secure_kafka: SecureKafka) -> AsyncIterator[Settings]:
    """Admin settings for a prefix of this module's own: topics created, the generated ACLs applied."""
    prefix = f"deny-{uuid.uuid4().hex[:8]}."
    admin = secure_kafka.settings("admin", topic_prefix=prefix)
    assert (await apply_topics(admin)).ok
    report = await apply_acls(admin)
    assert report.ok and not report.unchanged, report.lines()
    yield admin
    await delete_topics_under(admin.kafka, prefix)


def _topics(settings: Settings) -> list[str]:
    return [settings.topic(spec.name) for spec in CATALOGUE]


def _granted(settings: Settings, user: str, operation: Operation) -> set[str]:
    return {a.name for a in generate(settings) if a.user == user and a.resource is Resource.TOPIC
            and a.operation is operation}


@pytest.mark.parametrize("user", WRITERS)
async def test_each_principal_produces_only_where_its_acls_allow(secure_kafka, denials, user):
    assert _granted(denials, user, Operation.WRITE)
    produced = await produce_each(secure_kafka.access(user), _topics(denials))
    allowed = _granted(denials, user, Operation.WRITE)
    assert produced == {t: None if t in allowed else TopicAuthorizationFailedError for t in _topics(denials)}


async def test_a_read_only_principal_cannot_even_start_an_idempotent_producer(secure_kafka, denials):
    """No WRITE anywhere, so no producer id (IDEMPOTENT_WRITE is granted to nobody: WRITE on a topic implies it)."""
    assert not _granted(denials, "subscriber", Operation.WRITE)
    produced = await produce_each(secure_kafka.access("subscriber"), _topics(denials))
    assert set(produced.values()) == {ClusterAuthorizationFailedError}


@pytest.mark.parametrize("user", NON_ADMIN)
async def test_each_principal_fetches_only_what_its_acls_allow(secure_kafka, denials, user):
    fetched = await fetch_each(secure_kafka.access(user), _topics(denials))
    allowed = _granted(denials, user, Operation.READ)
    assert fetched == {t: None if t in allowed else TopicAuthorizationFailedError for t in _topics(denials)}


@pytest.mark.parametrize("user", NON_ADMIN)
async def test_each_principal_describes_only_the_topics_it_reads_or_writes(secure_kafka, denials, user):
    described = await describe_each(secure_kafka.access(user), _topics(denials))
    allowed = _granted(denials, user, Operation.READ) | _granted(denials, user, Operation.WRITE)
    assert described == {t: None if t in allowed else TopicAuthorizationFailedError for t in _topics(denials)}


@pytest.mark.parametrize("user", WORKERS)
async def test_a_worker_joins_its_own_groups_and_no_other_workers(secure_kafka, denials, user):
    mine = build_worker(user, denials)
    purpose, topic = mine.inputs[0]
    kafka = secure_kafka.access(user)
    assert await join_group(kafka, denials.group(user, purpose), topic) is None
    for other in WORKERS:
        if other != user:
            other_purpose, _t = build_worker(other, denials).inputs[0]
            assert await join_group(kafka, denials.group(other, other_purpose), topic) is GroupAuthorizationFailedError


@pytest.mark.parametrize("user", ["agents", "subscriber", "channels"])
async def test_a_client_joins_groups_under_its_prefix_only(secure_kafka, denials, user):
    client = CLIENTS[user]
    topic = denials.topic(client.reads[0])
    kafka = secure_kafka.access(user)
    assert await join_group(kafka, denials.topic(f"{client.group_prefix}sla-timers"), topic) is None
    assert await join_group(kafka, denials.group("sync", "ticket-events"), topic) is GroupAuthorizationFailedError
    assert await join_group(kafka, denials.topic("my-own-group"), topic) is GroupAuthorizationFailedError


async def test_a_forged_internal_command_from_the_agents_tools_is_refused_by_the_broker(secure_kafka, denials):
    """delete_ticket_of_conversation "from the system" (ADR 10): the record the sync worker would send, sent by agents."""
    forged = c.DeleteTicketOfConversation(command_id=f"forged-{uuid.uuid4().hex[:8]}", account_id="acme",
                                          conversation_id="conv-1", actor_id=c.SYNC_ACTOR)
    record = outgoing(forged, "/ticketflow/sync", prefix=denials.topic_prefix, internal=True)
    assert record.topic == denials.topic(TICKET_COMMANDS_INTERNAL)
    before = await end_offset(denials.kafka, record.topic, 6)
    producer = secure_kafka.access("agents").producer("forger")
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(record.topic, record.value, key=record.key.encode(), headers=record.headers)
    finally:
        await producer.stop()
    assert await end_offset(denials.kafka, record.topic, 6) == before  # nothing reached the topic
    sync_sent = await produce_each(secure_kafka.access("sync"), [record.topic])  # the sync worker's principal may
    assert sync_sent == {record.topic: None}


async def test_no_worker_can_create_topics_or_read_acls(secure_kafka, denials, exposure: Exposure):
    prefix = f"rogue-{uuid.uuid4().hex[:8]}."
    env = clean_env(**secure_kafka.client_env("inbound"), TICKETFLOW_TOPIC_PREFIX=prefix)
    created = run_cli(exposure, env, "topics", "apply")
    assert created.returncode == 1
    assert created.stdout.count("TopicAuthorizationFailedError") == len(CATALOGUE), created.stdout
    with pytest.raises(ClusterAuthorizationFailedError):
        await apply_acls(secure_kafka.settings("inbound", topic_prefix=prefix), check=True)


async def test_acls_apply_is_idempotent_and_reports_an_acl_it_does_not_generate(secure_kafka, denials, exposure):
    assert (await apply_acls(denials)).summary() == f"0 created, {len(generate(denials))} unchanged, 0 drifted, 0 failed"
    rogue = Acl("User:agents", Resource.TOPIC, denials.topic(TICKET_EVENTS), Pattern.LITERAL, Operation.READ)
    args = ["--topic", rogue.name, "--operation", "Read", "--allow-principal", rogue.principal]
    added = secure_kafka.run("acls", "--add", *args)  # Kafka's own AclCommand, as admin (admin.properties)
    assert added.returncode == 0, added.stderr
    try:
        for _wait in range(300):  # it takes effect through the metadata log
            if (await apply_acls(denials, check=True)).drift:
                break
            await asyncio.sleep(0.2)
        env = clean_env(**secure_kafka.client_env("admin"), TICKETFLOW_TOPIC_PREFIX=denials.topic_prefix)
        checked = run_cli(exposure, env, "acls", "apply")
        assert checked.returncode == 1
        assert f"DRIFT     {rogue.line()}  (not generated by Ticketflow)" in checked.stdout
        assert "0 created" in checked.stdout and "1 drifted" in checked.stdout
    finally:
        async with admin_client(denials.kafka) as admin:
            await admin._send_request(DeleteAclsRequest(rogue.resource, rogue.name, rogue.pattern, rogue.principal,
                                                        rogue.host, rogue.operation, 3))


# --- authentication ------------------------------------------------------------------------------------

async def test_an_unauthenticated_client_is_refused(secure_kafka):
    plain = KafkaAccess(secure_kafka.bootstrap)  # PLAINTEXT to the SASL_SSL listener
    assert isinstance(await refused(plain), KafkaConnectionError)
    ca = secure_kafka.client_env("admin")["KAFKA_SSL_CA_FILE"]
    tls_only = KafkaAccess(secure_kafka.bootstrap, "SSL", ca_file=ca)  # TLS, but no SASL
    assert isinstance(await refused(tls_only), KafkaConnectionError)
    producer = plain.producer("anonymous")
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()


async def test_a_wrong_password_and_an_unknown_user_are_refused(secure_kafka, exposure):
    wrong = exposure.secret("a wrong password tried", f"wrong-{uuid.uuid4().hex}")
    assert isinstance(await refused(secure_kafka.access("agents", password=wrong)), SaslAuthenticationFailed)
    admin_guess = secure_kafka.access("admin", password=wrong)
    assert isinstance(await refused(admin_guess), SaslAuthenticationFailed)
    nobody = KafkaAccess(secure_kafka.bootstrap, "SASL_SSL", "SCRAM-SHA-512", "nobody", admin_guess.password,
                         admin_guess.ca_file)
    assert isinstance(await refused(nobody), SaslAuthenticationFailed)
    env = clean_env(**{**secure_kafka.client_env("agents"), "KAFKA_PASSWORD": wrong})
    listed = run_cli(exposure, env, "topics", "list")
    assert listed.returncode == 3  # aiokafka reports a refused login as "Unable to bootstrap": "Kafka unreachable"


async def test_a_client_that_does_not_trust_the_brokers_ca_is_refused(secure_kafka):
    """The brokers' certificate is checked: a client trusting only the system's CAs does not connect."""
    agents = secure_kafka.access("agents")
    untrusting = KafkaAccess(agents.bootstrap_servers, "SASL_SSL", agents.sasl_mechanism, agents.username,
                             agents.password, ca_file=None)
    assert isinstance(await refused(untrusting), ssl.SSLCertVerificationError)
