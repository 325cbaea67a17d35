"""The AsyncAPI documents in docs/asyncapi/ are what scripts/asyncapi.py generates today, carry the
contracts' real payload schemas, and agree with the catalogue and the workers' wiring. (Their validity
as AsyncAPI 3.0 is checked by the AsyncAPI parser in test_validate_deploy.py.)"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from contracts.schema import SCHEMAS
from contracts.topics import CATALOGUE, DEADLETTER
from ticketflow.running import build_worker, worker_groups
from workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("asyncapi_generator", REPO / "scripts" / "asyncapi.py")
assert _spec is not None and _spec.loader is not None
generator = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generator)


def _doc(worker: str) -> dict:
    return yaml.safe_load((REPO / "docs" / "asyncapi" / f"{worker}.yaml").read_text())


def test_the_committed_documents_are_current():
    assert generator.main(["--check"]) == 0, "docs/asyncapi is stale: run .venv/bin/python scripts/asyncapi.py"


def test_each_worker_receives_its_inputs_in_its_own_consumer_groups():
    settings = Settings(topic_prefix="")
    for worker in generator.WORKERS:
        doc = _doc(worker)
        received = {(doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"],
                     op["bindings"]["kafka"]["groupId"]["enum"][0])
                    for op in doc["operations"].values() if op["action"] == "receive"}
        assert received == {(topic, group) for group, topic in worker_groups(settings, (worker,))}


def test_each_worker_sends_what_it_declares_and_the_catalogue_names_it_as_producer():
    settings = Settings(topic_prefix="")
    for worker in generator.WORKERS:
        doc = _doc(worker)
        sent = {doc["channels"][op["channel"]["$ref"].rsplit("/", 1)[1]]["address"]
                for op in doc["operations"].values() if op["action"] == "send"}
        assert sent == set(build_worker(worker, settings).outputs)
        for spec in CATALOGUE:
            if spec.name in sent:
                assert worker in spec.producers or spec.producers == "every worker", spec


def test_payloads_are_the_contracts_json_schemas():
    doc = _doc("inbound")
    schemas = doc["components"]["schemas"]
    inbound = TypeAdapter(SCHEMAS["inbound.message"]).json_schema(ref_template="#/components/schemas/{model}")
    inbound.pop("$defs")
    assert schemas["InboundMessage"] == inbound
    message = doc["components"]["messages"]["conversation.closed"]
    assert message["payload"] == {"$ref": "#/components/schemas/ConversationClosed"}
    assert schemas["ConversationClosed"]["properties"]["type"]["const"] == "conversation.closed"
    assert message["headers"] == {"$ref": "#/components/schemas/EnvelopeHeaders"}
    sent = {ref["$ref"].rsplit("/", 1)[1] for op in doc["operations"].values() if op["action"] == "send"
            for ref in op["messages"]}
    assert {"conversation.created", "command.rejected", "outbound.message", "deadLetter"} <= sent
    dead = doc["channels"]["deadletter"]
    assert dead["address"] == DEADLETTER and dead["bindings"]["kafka"]["topicConfiguration"]["max.message.bytes"] > 0


def test_every_command_and_event_type_has_its_own_message():
    types = {kind for name in ("conversation-command", "ticket-command") for kind, _model in
             generator._contract_schemas(name)[0]}
    sync = _doc("sync")["components"]["messages"]
    assert types <= set(sync)
