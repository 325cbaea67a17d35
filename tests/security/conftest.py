"""The secured run: a single node started by `deploy/kafka/kafka.sh secure-start` (SASL_SSL, SCRAM-SHA-512,
StandardAuthorizer, nobody allowed what no ACL allows), the ACLs `ticketflow acls apply` generates, a
database whose roles `ticketflow migrate --roles` made, and the three workers each as its own Kafka
principal and database role. Fixtures named like the single-broker ones (`settings`, `system`), so the
end-to-end tests imported into this folder run here unchanged (as tests/cluster does).

Everything this run logs or prints is kept (tests/security/exposure.py) for `test_secrets_stay_secret.py`,
which runs last (by name) and looks for every password in it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.security.broker import PRINCIPALS, SecureKafka, running, single_node
from tests.security.database import RoleDatabase, role_database
from tests.security.exposure import Exposure, clean_env, run_cli
from workers.settings import Settings


@pytest.fixture(scope="session")
def exposure() -> Iterator[Exposure]:
    """The secrets of the run and where they could show: every log record of this process, Ticketflow's own
    at DEBUG, the libraries' at INFO (their DEBUG output is scanned in `ticketflow -vv` runs instead: at
    DEBUG, aiokafka logs every request of the workers running here, which slows them down)."""
    found = Exposure()
    root, ours = logging.getLogger(), logging.getLogger("ticketflow")
    levels = root.level, ours.level
    root.addHandler(found.recorder)
    root.setLevel(min(root.getEffectiveLevel(), logging.INFO))
    ours.setLevel(logging.DEBUG)
    try:
        yield found
    finally:
        root.removeHandler(found.recorder)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory, exposure: Exposure) -> Iterator[SecureKafka]:
    with running(single_node(tmp_path_factory.mktemp("secure"), exposure), "secure-start", "stop") as kafka:
        yield kafka


@pytest.fixture(scope="session")
async def roles_db(postgres: str, exposure: Exposure) -> AsyncIterator[RoleDatabase]:
    """A database of its own, brought to head and given its roles by `ticketflow migrate --roles` as its owner."""
    async with role_database(postgres, exposure) as db:
        done = run_cli(exposure, clean_env(**db.role_env()), "migrate", "--roles")
        assert done.returncode == 0, done.stderr
        yield db


@pytest.fixture(scope="session")
def prefix() -> str:
    return f"sec-{uuid.uuid4().hex[:8]}."


@pytest.fixture(scope="session")
def principals(secure_kafka: SecureKafka, prefix: str) -> dict[str, Settings]:
    """Each principal's settings for this run's topics (no database: see `worker_settings`)."""
    return {name: secure_kafka.settings(name, topic_prefix=prefix, consumers_per_input=2, migrate_on_start=False)
            for name in PRINCIPALS}


@pytest.fixture(scope="session")
async def settings(secure_kafka: SecureKafka, roles_db: RoleDatabase, prefix: str,
                   exposure: Exposure) -> AsyncIterator[Settings]:
    """The admin's settings (operations: topics, ACLs, the probe) on the owner's database; topics and ACLs
    provisioned, the ACLs by `ticketflow acls apply` as admin."""
    from ticketflow.provisioning import apply_topics, delete_topics_under

    s = secure_kafka.settings("admin", database_url=roles_db.owner_url, topic_prefix=prefix, consumers_per_input=2,
                              migrate_on_start=False)
    report = await apply_topics(s)
    assert report.ok, report.lines()
    applied = run_cli(exposure, clean_env(**secure_kafka.client_env("admin"), TICKETFLOW_TOPIC_PREFIX=prefix),
                      "acls", "apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    yield s
    await delete_topics_under(s.kafka, prefix)


@pytest.fixture(scope="session")
def worker_settings(principals: dict[str, Settings], roles_db: RoleDatabase) -> dict[str, Settings]:
    """Each worker as its own Kafka principal and database role, migrations left to `ticketflow migrate`."""
    databases = {"inbound": roles_db.url("inbound"), "ticketing": roles_db.url("ticketing"),
                 "sync": "sqlite+aiosqlite:///:memory:"}  # the sync worker has no database
    return {name: principals[name].model_copy(update={"database_url": url}) for name, url in databases.items()}


@pytest.fixture(scope="session")
async def system(settings: Settings, principals: dict[str, Settings],
                 worker_settings: dict[str, Settings]) -> AsyncIterator[object]:
    from storage.database import create_engine
    from tests.security.driver import SecuredDriver, writers
    from tests.support.kafka import Probe
    from tests.support.system import WATCHED
    from ticketflow.running import WORKERS, start_workers, stop_workers

    workers = await start_workers(settings, WORKERS, per_worker=worker_settings)
    probe = Probe(settings.kafka, [settings.topic(t) for t in WATCHED])
    await probe.start()
    engine = create_engine(settings.database_url, writer=False)
    try:
        yield SecuredDriver(settings, engine, probe, writers(settings, principals))
    finally:
        await probe.stop()
        await stop_workers(workers)
        await engine.dispose()
