"""`deploy/kafka/kafka.sh secure-start`, as the secured run started it: what it prints (where each principal's
settings are, never a password), what it wrote (owner-only secrets, a CA and the brokers' certificate), how
the broker is configured, that a second start is a no-op, that the plain `start` refuses the folder, and
that the controller listener takes only the brokers' own certificate."""

from __future__ import annotations

import stat

import pytest
from aiokafka.errors import KafkaConnectionError

from tests.security.attempts import refused
from tests.security.broker import PRINCIPALS, SecureKafka
from workers.kafka import KafkaAccess

pytestmark = pytest.mark.kafka


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secure_start_prints_the_bootstrap_and_each_principals_settings(secure_kafka: SecureKafka):
    again = secure_kafka.run("secure-start")  # already running: the same report, nothing restarted
    assert again.returncode == 0, again.stderr
    assert f"kafka already running on {secure_kafka.bootstrap}" in again.stdout
    assert f"bootstrap: {secure_kafka.bootstrap} (SASL_SSL, SCRAM-SHA-512" in again.stdout
    secrets = secure_kafka.home / "secrets"
    for principal in PRINCIPALS:
        assert f"{secrets / principal}.env" in again.stdout and f"{secrets / principal}.properties" in again.stdout
        env = secure_kafka.client_env(principal)
        assert (env["KAFKA_USERNAME"], env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"]) == \
            (principal, "SASL_SSL", "SCRAM-SHA-512")
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == secure_kafka.bootstrap


def test_the_secrets_are_owner_only_ignored_by_git_and_one_per_user(secure_kafka: SecureKafka):
    secrets, tls = secure_kafka.home / "secrets", secure_kafka.home / "tls"
    assert _mode(secrets) == 0o700
    assert (secrets / ".gitignore").read_text() == "*\n"
    for path in [*secrets.glob("*.env"), *secrets.glob("*.properties"), secrets / "passwords",
                 tls / "broker.pem", tls / "ca.key", secure_kafka.home / "server.properties"]:
        assert _mode(path) == 0o600, path
    assert _mode(tls / "ca.pem") & 0o044  # clients read the CA certificate
    passwords = dict(line.split("=", 1) for line in (secrets / "passwords").read_text().splitlines())
    assert sorted(passwords) == sorted([*PRINCIPALS, "broker"])
    assert len(set(passwords.values())) == len(passwords) and all(len(p) >= 32 for p in passwords.values())


def test_the_broker_authenticates_everyone_and_allows_nothing_without_an_acl(secure_kafka: SecureKafka):
    props = dict(line.split("=", 1) for line in (secure_kafka.home / "server.properties").read_text().splitlines()
                 if "=" in line and not line.startswith("#"))
    assert props["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:SSL"
    assert props["inter.broker.listener.name"] == "CLIENT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["super.users"] == "User:admin;User:broker"
    assert props["listener.name.controller.ssl.client.auth"] == "required"


def test_the_plain_start_refuses_a_secured_folder(secure_kafka: SecureKafka):
    plain = secure_kafka.run("start")
    assert plain.returncode == 1
    assert "was formatted secured" in plain.stderr


async def test_the_controller_listener_takes_only_the_brokers_certificate(secure_kafka: SecureKafka):
    controller = f"127.0.0.1:{secure_kafka.env['KAFKA_CONTROLLER_PORT']}"
    ca = secure_kafka.client_env("admin")["KAFKA_SSL_CA_FILE"]
    assert isinstance(await refused(KafkaAccess(controller, "SSL", ca_file=ca)), (KafkaConnectionError, OSError))


def test_kafka_tools_run_as_admin_on_the_secured_node(secure_kafka: SecureKafka, settings):
    listed = secure_kafka.run("topics", "--list")  # admin.properties added by kafka.sh
    assert listed.returncode == 0, listed.stderr
    assert settings.topic("ticketflow.ticket.commands.internal.v1") in listed.stdout.split()
