"""Settings from the environment: typed, errors that name the variable, secrets never shown, and the
Kafka client options every client is built with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from contracts.common import Tier
from workers.runtime import group_instance_ids
from workers.settings import Settings, settings_error


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "a:1, b:2,c:3")
    monkeypatch.setenv("TICKETFLOW_HELPDESK_TIERS", "starter, enterprise")
    monkeypatch.setenv("TICKETFLOW_HELPDESK_CUTOFF", "2025-01-01T00:00:00+00:00")
    monkeypatch.setenv("TICKETFLOW_CONSUMERS_PER_INPUT", "3")
    s = Settings.from_env()
    assert s.bootstrap_list == ["a:1", "b:2", "c:3"]
    assert s.helpdesk_tiers == frozenset({Tier.STARTER, Tier.ENTERPRISE})
    assert s.helpdesk_cutoff == datetime(2025, 1, 1, tzinfo=UTC)
    assert s.consumers_per_input == 3


@pytest.mark.parametrize(("name", "value"), [
    ("TICKETFLOW_REPLICATION_FACTOR", "three"),
    ("TICKETFLOW_HELPDESK_CUTOFF", "2024-04-01T00:00:00"),
    ("KAFKA_SECURITY_PROTOCOL", "CARRIER_PIGEON"),
    ("TICKETFLOW_INSTANCE_ID", "pod 1/2"),
    ("TICKETFLOW_SESSION_TIMEOUT_MS", "1000"),
])
def test_a_bad_setting_is_named_in_one_line(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        Settings.from_env()
    message = settings_error(caught.value)
    assert message.startswith(f"{name}={value!r}") and "\n" not in message


def test_each_consumer_of_an_input_has_its_own_static_member_name_kept_across_restarts():
    plain = Settings(consumers_per_input=2)
    assert group_instance_ids(plain) == [None, None], "no instance id: dynamic members"
    pod = Settings(instance_id="ticketflow-inbound-7d9f-x2k", consumers_per_input=3)
    assert group_instance_ids(pod) == ["ticketflow-inbound-7d9f-x2k-0", "ticketflow-inbound-7d9f-x2k-1",
                                       "ticketflow-inbound-7d9f-x2k-2"]
    assert group_instance_ids(pod) == group_instance_ids(Settings(instance_id="ticketflow-inbound-7d9f-x2k",
                                                                  consumers_per_input=3))


def test_passwords_are_secrets_never_shown(monkeypatch):
    monkeypatch.setenv("KAFKA_PASSWORD", "hunter2-kafka")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://tf:hunter2-db@db:5432/tf")
    s = Settings.from_env()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in repr(s.kafka)
    assert s.kafka_password is not None and s.kafka_password.get_secret_value() == "hunter2-kafka"


def test_sasl_ssl_clients_get_credentials_and_tls(monkeypatch, tmp_path):
    import ssl

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_USERNAME", "inbound")
    monkeypatch.setenv("KAFKA_PASSWORD", "s3cret")
    options = Settings.from_env().kafka.options()
    assert (options["security_protocol"], options["sasl_mechanism"], options["sasl_plain_username"],
            options["sasl_plain_password"]) == ("SASL_SSL", "SCRAM-SHA-512", "inbound", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_plaintext_clients_get_no_credentials():
    options = Settings(bootstrap_servers="h:1").kafka.options()
    assert options == {"bootstrap_servers": "h:1", "security_protocol": "PLAINTEXT"}


def test_a_database_url_parameter_the_driver_does_not_take_is_named_with_the_password_hidden(monkeypatch):
    """libpq's `sslrootcert` (or `sslmode`) in a `postgresql+asyncpg://` URL reached `asyncpg.connect` as a
    keyword it does not take: a TypeError traceback at the first connection. It is a configuration error
    naming the parameters now, and the URL it shows keeps its password hidden."""
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app:s3cret@db:5432/app?sslrootcert=/ca.pem&sslmode=verify-full")
    with pytest.raises(ValidationError) as caught:
        Settings.from_env()
    line = settings_error(caught.value)
    assert "does not take: sslmode, sslrootcert (it takes: " in line and "ssl, " in line
    assert line.startswith("DATABASE_URL='postgresql+asyncpg://app:***@db:5432/app?")
    assert "s3cret" not in line


def test_database_url_parameters_asyncpg_takes_are_accepted():
    url = "postgresql+asyncpg://app:p@db/app?ssl=verify-full&command_timeout=30&prepared_statement_cache_size=0"
    assert Settings(database_url=url).database_url == url
    assert Settings(database_url="sqlite+aiosqlite:///x.db?mode=ro").on_postgresql is False


def test_a_bad_secret_is_never_shown_in_the_error(monkeypatch):
    from workers.settings import _shown

    field = Settings.model_fields["kafka_password"]
    assert _shown(field, "hunter2") == "***"
    assert _shown(Settings.model_fields["replication_factor"], "three") == "three"
