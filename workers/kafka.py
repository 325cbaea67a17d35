"""The one place Ticketflow's Kafka clients are made: every producer, consumer, admin client and
FastStream broker gets its address, security protocol, SASL credentials and TLS files from one
`KafkaAccess` (from the settings), so a secured cluster needs no change anywhere else.

Producers are idempotent with `acks=all` and may send records as large as the dead-letter topic takes.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from contracts.topics import DEADLETTER_MAX_BYTES
from workers import aiokafka_fixes

aiokafka_fixes.install()  # for every client of the process: see that module

MAX_REQUEST_BYTES = DEADLETTER_MAX_BYTES + 64 * 1024
"""Large enough for any dead letter; the broker still refuses records over a topic's own limit."""


class TlsFileUnreadable(ValueError):
    """A TLS file the settings name cannot be read: a permanent error (a worker stops and says which)."""

    def __init__(self, setting: str, path: str | None, what: str, cause: Exception) -> None:
        super().__init__(f"{setting}={path!r} cannot be read as {what}: {cause}")


@dataclass(frozen=True)
class KafkaAccess:
    """How to reach and authenticate to the brokers. `password` is a secret: never in a repr or a log."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def bootstrap_list(self) -> list[str]:
        return [h.strip() for h in self.bootstrap_servers.split(",") if h.strip()]

    def ssl_context(self) -> ssl.SSLContext | None:
        """TLS for SSL and SASL_SSL: the brokers' CA, and a client certificate when one is configured.
        A file that cannot be read raises TlsFileUnreadable, naming the setting and the path (Python's
        own error names neither: `FileNotFoundError(2, 'No such file or directory')`)."""
        if self.security_protocol not in ("SSL", "SASL_SSL"):
            return None
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsFileUnreadable("KAFKA_SSL_CA_FILE", self.ca_file, "the brokers' CA", exc) from exc
        if self.cert_file:
            try:
                context.load_cert_chain(self.cert_file, self.key_file)
            except (OSError, ssl.SSLError) as exc:
                raise TlsFileUnreadable("KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE",
                                        f"{self.cert_file} / {self.key_file}", "a client certificate and its key",
                                        exc) from exc
        return context

    def options(self) -> dict[str, Any]:
        """Keyword arguments every aiokafka client takes."""
        opts: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                                "security_protocol": self.security_protocol}
        if context := self.ssl_context():
            opts["ssl_context"] = context
        if self.security_protocol.startswith("SASL"):
            opts |= {"sasl_mechanism": self.sasl_mechanism or "SCRAM-SHA-512",
                     "sasl_plain_username": self.username,
                     "sasl_plain_password": self.password.get_secret_value() if self.password else None}
        return opts

    def producer(self, client_id: str, **overrides: Any) -> AIOKafkaProducer:
        """The idempotent, `acks=all` producer every Ticketflow component publishes with."""
        return AIOKafkaProducer(**{**self.options(), "client_id": client_id, "acks": "all", "enable_idempotence": True,
                                   "linger_ms": 5, "request_timeout_ms": 30_000,
                                   "max_request_size": MAX_REQUEST_BYTES, **overrides})

    async def started_producer(self, client_id: str, **overrides: Any) -> AIOKafkaProducer:
        """`producer(...)`, started; one that fails to start is stopped (its connections closed) first."""
        producer = self.producer(client_id, **overrides)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    def consumer(self, *topics: str, **kwargs: Any) -> AIOKafkaConsumer:
        """A consumer that never auto-commits (pass `group_id` to join a group)."""
        return AIOKafkaConsumer(*topics, **{**self.options(), "enable_auto_commit": False, **kwargs})

    def admin(self, client_id: str, **kwargs: Any) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**{**self.options(), "client_id": client_id, **kwargs})

    def faststream_security(self) -> Any:
        """The same access for FastStream's `KafkaBroker(security=...)` (None for PLAINTEXT)."""
        from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

        context = self.ssl_context()
        if not self.security_protocol.startswith("SASL"):
            return BaseSecurity(ssl_context=context) if context else None
        kinds = {"SCRAM-SHA-512": SASLScram512, "SCRAM-SHA-256": SASLScram256, "PLAIN": SASLPlaintext}
        kind = kinds[self.sasl_mechanism or "SCRAM-SHA-512"]
        password = self.password.get_secret_value() if self.password else ""
        return kind(username=self.username or "", password=password, ssl_context=context)


def access(kafka: KafkaAccess | str) -> KafkaAccess:
    """`kafka` as a KafkaAccess (a bare bootstrap string means plaintext, as in tests and tools)."""
    return kafka if isinstance(kafka, KafkaAccess) else KafkaAccess(kafka)


def make_producer(kafka: KafkaAccess | str, client_id: str) -> AIOKafkaProducer:
    """The project's producer for `kafka` (settings.kafka, or a bare bootstrap string in tests and tools)."""
    return access(kafka).producer(client_id)


@asynccontextmanager
async def started_admin(kafka: KafkaAccess | str, client_id: str, **kwargs: Any) -> AsyncIterator[AIOKafkaAdminClient]:
    """An admin client, started; closed afterwards, also when starting it failed (nothing is left open)."""
    admin = access(kafka).admin(client_id, **kwargs)
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


@asynccontextmanager
async def started_consumer(kafka: KafkaAccess | str, client_id: str, **kwargs: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer (no auto-commit), started; stopped afterwards, also when starting it failed."""
    consumer = access(kafka).consumer(client_id=client_id, **kwargs)
    try:
        await consumer.start()
        yield consumer
    finally:
        await consumer.stop()


async def start_both(admin: AIOKafkaAdminClient, consumer: AIOKafkaConsumer) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
    """Start a long-lived admin client and consumer; when either fails, close both and raise."""
    try:
        await admin.start()
        await consumer.start()
    except BaseException:
        await consumer.stop()
        await admin.close()
        raise
    return admin, consumer
