"""X4 operator tools end to end, with the real workers: an operator lists a dead letter, fixes its cause
and replays it; skips the record a stopped group is stuck on without losing it, then replays it; and
cannot skip under a running worker. The CLI runs as the operator runs it (`python -m ticketflow.cli`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from aiokafka.partitioner import DefaultPartitioner

from contracts.topics import DEADLETTER, INBOUND_MESSAGES
from tests.platform.test_operator_tools import one_line, run_cli
from tests.support.kafka import Probe, Seen, settle
from tests.support.system import WATCHED, System, new_id
from ticketflow.provisioning import apply_topics
from ticketflow.running import build_worker
from workers.settings import Settings


def _env(settings: Settings) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "TICKETFLOW_TOPIC_PREFIX": settings.topic_prefix}


def _received(channel_message_id: str) -> Callable[[Seen], bool]:
    return lambda r: r.type == "conversation.message_received" and r.body["channel_message_id"] == channel_message_id


async def test_x4_dead_letter_of_an_unknown_account_is_listed_then_replayed_once_the_account_exists(system):
    since = datetime.now(UTC)
    account = new_id("acct-late-")
    msg = system.inbound(account)
    await system.publish(msg)
    await system.probe.wait_for(lambda r: r.topic.endswith(DEADLETTER) and r.body.get("channel_message_id")
                                == msg.channel_message_id, what="the dead letter for the unknown account")
    select = ["--reason", "unknown_account", "--topic", INBOUND_MESSAGES, "--since", since.isoformat()]

    listed = await run_cli(_env(system.settings), "deadletters", "list", "--json", *select)

    assert listed.returncode == 0, listed.stderr
    mine = [json.loads(line) for line in listed.stdout.splitlines() if account in line]
    assert len(mine) == 1
    assert mine[0]["original_topic"] == system.settings.topic(INBOUND_MESSAGES)
    assert mine[0]["key"] == msg.partition_key() and mine[0]["reason"] == "unknown_account"

    put = await run_cli(_env(system.settings), "accounts", "put", "--id", account, "--tier", "starter",
                        "--created-at", "2023-05-01T00:00:00+00:00")
    assert put.returncode == 0, put.stderr
    await system.settle()  # the workers know the account now

    replayed = await run_cli(_env(system.settings), "deadletters", "replay", *select)

    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines()[0].startswith("[1/1] replayed ")
    await system.probe.wait_for(_received(msg.channel_message_id), what="the replayed message, processed")
    assert len(await system.conversations_of(account)) == 1


async def test_x4_skip_refuses_while_the_workers_group_is_running(system):
    group = system.settings.group("inbound", "messages")

    out = await run_cli(_env(system.settings), "skip", "--group", group, "--topic", INBOUND_MESSAGES,
                        "--partition", "0", "--offset", "0")

    assert out.returncode == 1
    line = one_line(out.stderr)
    assert f"group {group} has" in line and "active consumer(s)" in line and "stop them" in line


async def test_x4_skipped_record_is_not_processed_stays_on_the_dead_letter_topic_and_replays(system):
    settings = system.settings.model_copy(update=dict(topic_prefix=f"{system.settings.topic_prefix}skip-{uuid.uuid4().hex[:8]}."))
    await apply_topics(settings)
    probe = Probe(settings.bootstrap_servers, [settings.topic(t) for t in WATCHED])
    await probe.start()
    iso = System(settings, system.engine, probe)
    worker = build_worker("inbound", settings)
    try:
        account = await iso.account()
        stuck = iso.inbound(account)
        await iso.publish(stuck)  # the first record of its partition: the group (never run) is at offset 0
        partition = DefaultPartitioner()(stuck.partition_key().encode(), list(range(6)), list(range(6)))
        group = settings.group("inbound", "messages")

        skipped = await run_cli(_env(settings), "skip", "--group", group, "--topic", INBOUND_MESSAGES,
                                "--partition", str(partition), "--offset", "0", "--note", "wedged the worker")

        assert skipped.returncode == 0, skipped.stderr
        assert skipped.stdout.startswith(f"skipped {settings.topic(INBOUND_MESSAGES)}[{partition}]@0 ")
        [letter] = await probe.wait_for(lambda r: r.topic.endswith(DEADLETTER), what="the skipped record")
        assert letter.headers["dlq_reason"] == "skipped_by_operator" and letter.headers["dlq_consumer"] == group
        assert json.loads(letter.value)["channel_message_id"] == stuck.channel_message_id

        await worker.start()
        after = iso.inbound(account, thread=stuck.channel_thread_key)  # same key, same partition, behind it
        conversation = await iso.receive(after)
        await settle(settings.bootstrap_servers, [(group, settings.topic(INBOUND_MESSAGES))],
                     also_quiet=iso._outbox_empty)
        assert probe.matching(_received(stuck.channel_message_id)) == []  # skipped: not processed
        assert len(await iso.messages_of(conversation)) == 1

        replayed = await run_cli(_env(settings), "deadletters", "replay", "--reason", "skipped_by_operator")

        assert replayed.returncode == 0, replayed.stderr
        assert f"to {settings.topic(INBOUND_MESSAGES)}[{partition}]@2" in replayed.stdout
        await probe.wait_for(_received(stuck.channel_message_id), what="the replayed record, processed")
        assert len(await iso.messages_of(conversation)) == 2
    finally:
        await worker.stop()
        await probe.stop()
