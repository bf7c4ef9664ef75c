#!/usr/bin/env bash
# Validates the Kubernetes manifests offline: renders each overlay with `kubectl kustomize`,
# checks the core kinds with kubernetes-validate --strict (PyPI) and the CloudNativePG kinds
# with check-jsonschema (PyPI) against the schemas in deploy/k8s/schemas/.
# Needs kubectl (with kustomize built in) and python3; installs the two PyPI tools if missing.
set -euo pipefail
cd "$(dirname "$0")"
command -v kubectl >/dev/null || { echo "validate: kubectl is required (it renders the overlays)"; exit 1; }
python3 -c 'import kubernetes_validate' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
python3 -c 'import check_jsonschema' 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check 'check-jsonschema==0.39.0'
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in overlays/*/; do
  name=$(basename "$overlay")
  kubectl kustomize "$overlay" >"$out/$name.yaml"
  # One file per object, named by kind, for the two validators.
  python3 - "$out/$name.yaml" "$out/$name" <<'PY'
import os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
os.makedirs(sys.argv[2])
for i, doc in enumerate(docs):
    group = "cnpg" if doc["apiVersion"].startswith("postgresql.cnpg.io/") else "core"
    with open(os.path.join(sys.argv[2], f"{group}-{doc['kind']}-{i}.yaml"), "w") as f:
        yaml.safe_dump(doc, f)
print(f"{len(docs)} objects")
PY
  kubernetes-validate --strict --quiet -k 1.32.0 "$out/$name"/core-*.yaml
  check-jsonschema --schemafile schemas/cnpg-cluster.json "$out/$name"/cnpg-Cluster-*.yaml
  check-jsonschema --schemafile schemas/cnpg-database.json "$out/$name"/cnpg-Database-*.yaml
  echo "validate: overlay $name is valid"
done
