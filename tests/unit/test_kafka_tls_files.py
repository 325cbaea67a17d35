"""The TLS files the settings name (KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE): one that
cannot be read is a configuration error naming its setting and path, raised before any connection."""

from __future__ import annotations

import pytest

from workers.delivery.errors import is_transient
from workers.kafka import KafkaAccess, TlsFileUnreadable


def test_a_ca_file_that_is_not_there_names_its_setting_and_path(tmp_path) -> None:
    missing = tmp_path / "ca.pem"
    with pytest.raises(TlsFileUnreadable, match=f"KAFKA_SSL_CA_FILE='{missing}' cannot be read as the brokers' CA"):
        KafkaAccess("b:9093", "SSL", ca_file=str(missing)).ssl_context()


def test_a_ca_file_that_is_no_certificate_names_its_setting_and_path(tmp_path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(TlsFileUnreadable, match="KAFKA_SSL_CA_FILE="):
        KafkaAccess("b:9093", "SASL_SSL", ca_file=str(garbage)).ssl_context()


def test_a_client_certificate_that_is_not_there_names_both_settings(tmp_path) -> None:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    with pytest.raises(TlsFileUnreadable, match=f"KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE='{cert} / {key}'"):
        KafkaAccess("b:9093", "SSL", cert_file=str(cert), key_file=str(key)).ssl_context()


def test_an_unreadable_tls_file_is_permanent_not_a_wait() -> None:
    assert not is_transient(TlsFileUnreadable("KAFKA_SSL_CA_FILE", "/x", "the brokers' CA", FileNotFoundError(2, "x")))


def test_without_tls_no_file_is_read() -> None:
    assert KafkaAccess("b:9092", "PLAINTEXT", ca_file="/nowhere").ssl_context() is None
