"""No password appears anywhere this secured run wrote to: every log record of the test process (the
workers ran in it), every `ticketflow` and `kafka.sh` output (including the failures: refused topics,
a wrong password, missing settings), and the brokers' own logs. The secrets: every password the launchers
generated, the database roles' and owner's, and the wrong passwords tried.

Runs last in this folder (pytest takes the files in name order), so it sees what the others wrote."""

from __future__ import annotations

from tests.security.exposure import Exposure


def test_no_password_in_any_log_or_output(exposure: Exposure, system, roles_db, secure_kafka):
    places = list(exposure.places())
    assert len(exposure.secrets) >= 8 + 4  # the broker's users and the database's roles, at least
    assert any(where.startswith("ticketflow migrate") for where, _text in places)
    assert any(where.startswith("log record of ticketflow") for where, _text in places)
    assert any(where.endswith("kafka.log") for where, _text in places)
    leaks = [(name, where) for where, text in places for name, secret in exposure.secrets.items() if secret in text]
    assert leaks == []  # (which secret, where): never the value itself
