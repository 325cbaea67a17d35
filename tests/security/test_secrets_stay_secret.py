"""No password appears anywhere this secured run wrote to: every log record of the test process (the
workers ran in it), every `ticketflow` and `kafka.sh` output (including the failures: refused topics,
a wrong password, missing settings), the brokers' own logs, and `ticketflow -vv` runs that log at DEBUG
everything the libraries do (the SCRAM exchange with the broker, the statements `migrate --roles` sends).
The secrets: every password the launchers generated, the database roles' and owner's, and the wrong
passwords tried.

Runs last in this folder (pytest takes the files in name order), so it sees what the others wrote."""

from __future__ import annotations

import logging
import uuid

from tests.security.exposure import Exposure, clean_env, run_cli


def test_no_password_in_any_log_or_output(exposure: Exposure, system, settings, roles_db, secure_kafka):
    prefix = {"TICKETFLOW_TOPIC_PREFIX": settings.topic_prefix}
    wrong = exposure.secret("a wrong password tried at DEBUG", f"wrong-{uuid.uuid4().hex}")
    for principal, args in [("agents", ["topics", "list"]), ("admin", ["acls", "apply", "--check"]),
                            ("inbound", ["lag"])]:  # (the last one is refused: inbound may not see the other groups)
        run_cli(exposure, clean_env(**secure_kafka.client_env(principal), **prefix), "-vv", *args)
    run_cli(exposure, clean_env(**{**secure_kafka.client_env("agents"), "KAFKA_PASSWORD": wrong}, **prefix),
            "-vv", "topics", "list")
    migrated = run_cli(exposure, clean_env(**roles_db.role_env()), "-vv", "migrate", "--roles")
    assert migrated.returncode == 0, migrated.stderr

    # What a careless log line would print: the settings and the Kafka access they hold, with their secrets.
    logging.getLogger("ticketflow.security-test").warning("settings %r; kafka %r", settings, settings.kafka)

    places = list(exposure.places())
    assert len(exposure.secrets) >= 8 + 4  # the broker's users and the database's roles, at least
    assert any("SaslAuthenticateRequest" in text for _where, text in places)  # the DEBUG exchange was seen
    assert any(where.startswith("log record of ticketflow") for where, _text in places)
    assert any(where.endswith("kafka.log") for where, _text in places)
    leaks = [(name, where) for where, text in places for name, secret in exposure.secrets.items() if secret in text]
    assert leaks == []  # (which secret, where): never the value itself
