"""A secured Kafka started by the project's launcher (`deploy/kafka/kafka.sh secure-start` or
`secure-cluster-start`) in a run folder of its own, and each principal's client settings read from the
env files the launcher writes (`<home>/secrets/<principal>.env`)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from tests.security.exposure import Exposure
from tests.support.services import REPO
from tests.support.services_private import free_cluster_base, free_port
from workers.kafka import KafkaAccess
from workers.settings import Settings

KAFKA_SH = REPO / "deploy/kafka/kafka.sh"
FAST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
PRINCIPALS = ("admin", "inbound", "ticketing", "sync", "agents", "subscriber", "channels")


@dataclass
class SecureKafka:
    """One secured node or cluster: `home` is its run folder (tls/, secrets/)."""

    home: Path
    bootstrap: str
    env: dict[str, str]
    exposure: Exposure

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """kafka.sh ARGS in this run folder; the output is kept for the secrets scan."""
        done = subprocess.run([str(KAFKA_SH), *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        self.exposure.output(f"kafka.sh {' '.join(args)}", done.stdout, done.stderr)
        return done

    def client_env(self, principal: str) -> dict[str, str]:
        """The KAFKA_* variables of `principal` (its env file)."""
        lines = (self.home / "secrets" / f"{principal}.env").read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def access(self, principal: str, password: str | None = None) -> KafkaAccess:
        """How `principal` reaches the brokers (with another password, to be refused)."""
        env = self.client_env(principal)
        return KafkaAccess(env["KAFKA_BOOTSTRAP_SERVERS"], env["KAFKA_SECURITY_PROTOCOL"], env["KAFKA_SASL_MECHANISM"],
                           env["KAFKA_USERNAME"], SecretStr(password or env["KAFKA_PASSWORD"]),
                           env["KAFKA_SSL_CA_FILE"])

    def settings(self, principal: str, **fields: Any) -> Settings:
        """Ticketflow's settings for `principal`, with `fields` (prefix, database...) on top."""
        return Settings(**self.client_env(principal), **fields)

    def remember_secrets(self) -> None:
        """Every password the launcher generated is a secret of this run; the brokers' logs are places to look."""
        for line in (self.home / "secrets" / "passwords").read_text().splitlines():
            name, _, password = line.partition("=")
            self.exposure.secret(f"kafka password of {name} ({self.home.name})", password)
        self.exposure.files += [self.home / "kafka.log*", self.home / "node-*" / "kafka.log*"]


def single_node(run_dir: Path, exposure: Exposure) -> SecureKafka:
    """A secured single node on free ports (not started yet: `run("secure-start")`)."""
    port, controller = free_port(), free_port()
    env = {**os.environ, "TICKETFLOW_RUN_DIR": str(run_dir), "KAFKA_PORT": str(port),
           "KAFKA_CONTROLLER_PORT": str(controller), "KAFKA_JVM_OPTS": FAST_JVM, "KAFKA_START_TIMEOUT": "180"}
    for name in ("KAFKA_BOOTSTRAP", "KAFKA_COMMAND_CONFIG"):
        env.pop(name, None)
    return SecureKafka(run_dir / f"kafka-{port}", f"127.0.0.1:{port}", env, exposure)


def three_nodes(run_dir: Path, exposure: Exposure) -> SecureKafka:
    """A secured three-node cluster on free ports (not started yet: `run("secure-cluster-start")`)."""
    base = free_cluster_base(33092, 34000, 43)
    env = {**os.environ, "TICKETFLOW_RUN_DIR": str(run_dir), "KAFKA_CLUSTER_BASE_PORT": str(base),
           "KAFKA_JVM_OPTS": FAST_JVM, "KAFKA_START_TIMEOUT": "180", "KAFKA_STOP_TIMEOUT": "5"}
    for name in ("KAFKA_BOOTSTRAP", "KAFKA_COMMAND_CONFIG", "KAFKA_CLUSTER_CONTROLLER_BASE_PORT"):
        env.pop(name, None)
    bootstrap = ",".join(f"127.0.0.1:{base + n}" for n in range(3))
    return SecureKafka(run_dir / "kafka-cluster", bootstrap, env, exposure)


@contextmanager
def running(kafka: SecureKafka, start: str, stop: str) -> Iterator[SecureKafka]:
    """`kafka.sh START`, its secrets remembered, then `kafka.sh STOP` afterwards (also when a test failed)."""
    started = kafka.run(start)
    assert started.returncode == 0, started.stderr
    kafka.remember_secrets()
    try:
        yield kafka
    finally:
        stopped = kafka.run(stop)
        assert stopped.returncode == 0, stopped.stderr
