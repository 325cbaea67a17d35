"""scripts/validate_deploy.sh in the test command: the Dockerfile (hadolint), the Compose file (the
Compose spec), the Kubernetes manifests (the Kubernetes schemas, strict), the Strimzi topics and the
AsyncAPI documents (the AsyncAPI parser) pass; and each validator really rejects a broken copy."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "validate_deploy.sh"


def validate(**inputs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT)], cwd=REPO, env={**os.environ, **inputs}, capture_output=True,
                          text=True, timeout=540)


def test_the_committed_deployment_and_asyncapi_documents_are_valid():
    done = validate()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validate: all passed" in done.stdout
    for name in ("inbound", "ticketing", "sync"):
        assert f"docs/asyncapi/{name}.yaml: valid AsyncAPI 3.0.0" in done.stdout
    for kind in ("configmap/ticketflow", "deployment/ticketflow-inbound", "deployment/ticketflow-ticketing",
                 "deployment/ticketflow-sync", "job/ticketflow-migrate"):
        assert f"passed for resource {kind}" in done.stdout


def _copy(tmp_path: Path, relative: str, old: str, new: str) -> Path:
    """A copy of a committed file or folder with one text replaced (in the one file that has it)."""
    source = REPO / relative
    target = tmp_path / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy(source, target)
    files = [p for p in ([target] if target.is_file() else target.rglob("*.yaml")) if old in p.read_text()]
    assert files, f"{old!r} is not in {relative}"
    files[0].write_text(files[0].read_text().replace(old, new, 1))
    return target


@pytest.mark.parametrize(("variable", "relative", "old", "new", "complaint"), [
    ("DOCKERFILE", "deploy/docker/Dockerfile", "USER 10001:10001", "USER root", "DL3002"),
    ("COMPOSE_FILE", "deploy/compose/compose.yaml", "condition: service_healthy", "condition: service_tired",
     "'service_tired' is not one of"),
    ("K8S_DIR", "deploy/k8s", "terminationGracePeriodSeconds: 45", "terminationGracePeriod: 45",
     "terminationGracePeriod"),
    ("K8S_DIR", "deploy/k8s", "kind: ConfigMap", "kind: ConfigMapp", "Couldn't find schema"),
    ("K8S_DIR", "deploy/k8s", "partitions: 6", "partitions: 0", "kafkatopic"),
    ("ASYNCAPI_DIR", "docs/asyncapi", "action: receive", "action: fetch", "INVALID"),
])
def test_each_validator_rejects_a_broken_file(tmp_path, variable, relative, old, new, complaint):
    broken = _copy(tmp_path, relative, old, new)
    done = validate(**{variable: str(broken)})
    assert done.returncode != 0
    assert complaint in done.stdout + done.stderr
