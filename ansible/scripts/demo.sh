#!/usr/bin/env bash
# The demo pipeline `make up` ends with: the example weather pipeline
# (tasks_py/examples/weather) run from this machine with the local executor
# against the local cluster's MLflow (published on 127.0.0.1:5000) and NGAS.
#   NGAS_URL   an existing NGAS server (else the mlpipe-ngas container)
#   MLPIPE_CHANGES_FILE  gets the number of steps that ran (0: all up to date)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
inv=${MLPIPE_INVENTORY:-$top/inventories/local}
example=$top/tasks_py/examples/weather

ngas=${NGAS_URL:-}
if [ -z "$ngas" ]; then
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' mlpipe-ngas)
  ngas=http://$ip:7777
fi
secret() {  # secret NAME: one value of the inventory's vault
  ANSIBLE_VAULT_PASSWORD_FILE=$top/.vault-pass ansible-vault view "$inv/group_vars/all/vault.yml" \
    | python3 -c 'import sys, yaml; print(yaml.safe_load(sys.stdin)[sys.argv[1]])' "$1"
}
export MLPIPE_CONFIG=$example/mlpipe.toml
export MLPIPE_NGAS_URL=$ngas
export MLPIPE_MLFLOW_TRACKING_URI=${MLPIPE_DEMO_MLFLOW_URL:-http://127.0.0.1:5000}
export MLFLOW_TRACKING_USERNAME=${MLPIPE_DEMO_MLFLOW_USER:-admin}
MLFLOW_TRACKING_PASSWORD=$(secret vault_mlflow_admin_password)
export MLFLOW_TRACKING_PASSWORD
export MLPIPE_CACHE_DIR=${MLPIPE_CACHE_DIR:-$top/.cache/mlpipe-demo}

echo "demo: $example/pipeline.yaml (MLflow $MLPIPE_MLFLOW_TRACKING_URI, NGAS $ngas)"
out=$(mktemp); trap 'rm -f "$out"' EXIT
cd "$example"
set +e
mlpipe pipeline run pipeline.yaml --executor local | tee "$out"
rc=${PIPESTATUS[0]}
set -e
ran=$(grep -c ': ran' "$out" || true)
skipped=$(grep -c ': skipped' "$out" || true)
[ -n "${MLPIPE_CHANGES_FILE:-}" ] && echo "$ran" >> "$MLPIPE_CHANGES_FILE"
if [ "$rc" -ne 0 ]; then
  echo "demo: FAILED (exit $rc); the output above names the failing step. Run 'make up' again to resume from it."
  exit "$rc"
fi
echo "demo: $ran step(s) ran, $skipped unchanged (skipped); see the runs at $MLPIPE_MLFLOW_TRACKING_URI"
