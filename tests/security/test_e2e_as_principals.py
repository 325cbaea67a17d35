"""The sync and ticket rule tests end to end, unchanged, on the secured broker: each worker runs as its own
Kafka principal with only the ACLs `ticketflow acls apply` generated, and (inbound, ticketing) as its own
database role; commands come from the `agents` principal, inbound messages from `channels` (the `system`
fixture of this folder). Conversations (C1-C7) run through them too (every test starts with one)."""

from sqlalchemy import func, select

from storage.tables import processed_messages
from tests.e2e.test_sync_e2e import *  # noqa: F403 - collected again here, on the secured broker
from tests.e2e.test_tickets_e2e import *  # noqa: F403


async def test_each_worker_ran_as_its_own_principal_and_role(system, worker_settings, roles_db):
    for name, settings in worker_settings.items():
        assert settings.kafka_username == name
        assert settings.kafka_security_protocol == "SASL_SSL"
        assert not settings.migrate_on_start
    assert worker_settings["inbound"].database_url.split("//")[1].startswith(f"{roles_db.prefix}inbound:")
    assert worker_settings["ticketing"].database_url.split("//")[1].startswith(f"{roles_db.prefix}ticketing:")
    account = await system.account()
    conv = await system.new_conversation(account)
    await system.new_ticket(account, conv)
    await system.settle()
    async with system.engine.connect() as conn:  # the owner sees every worker's rows of the shared table
        consumers = (await conn.execute(select(processed_messages.c.consumer, func.count())
                                        .group_by(processed_messages.c.consumer))).all()
    assert {c.split(".")[0] for c, _n in consumers} == {"inbound", "ticketing"}
