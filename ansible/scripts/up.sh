#!/usr/bin/env bash
# `make up`: the whole platform on local systemd containers, then the demo pipeline.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
export ANSIBLE_CONFIG=$top/ansible/ansible.cfg
changes=$(mktemp); trap 'rm -f "$changes"' EXIT
export MLPIPE_CHANGES_FILE=$changes
inv=$top/inventories/local

# Where NGAS comes from: NGAS_URL (an existing server) or NGAS_SOURCE (a git
# URL or a local checkout to install from); default: the ngas role's ngas_source.
extra=()
[ -n "${NGAS_URL:-}" ] && extra+=(-e "ngas_url=$NGAS_URL")
[ -n "${NGAS_SOURCE:-}" ] && extra+=(-e "ngas_source=$NGAS_SOURCE")
[ -n "${NGAS_VERSION:-}" ] && extra+=(-e "ngas_version=$NGAS_VERSION")

echo "== NGAS preflight"
ansible/scripts/run-playbook.sh ngas-preflight ansible/ngas-preflight.yml -i "$inv" "${extra[@]}"
echo "== secrets"
python3 ansible/scripts/gen-secrets.py "$inv"
ansible/scripts/ensure-docker.sh
echo "== local cluster"
ansible/scripts/run-playbook.sh local-cluster ansible/local-cluster.yml -i "$inv"
echo "== site"
ansible/scripts/run-playbook.sh site ansible/site.yml -i "$inv" "${extra[@]}"

echo "== demo pipeline"
ansible/scripts/demo.sh

total=$(awk '{t+=$1} END{print t+0}' "$changes")
echo
if [ "$total" -eq 0 ]; then
  echo "make up: nothing changed: the platform was already up to date."
else
  echo "make up: done ($total changes)."
fi
cat <<MSG
Running now (local containers on Docker network 'mlpipe'; 'make down' removes them):
  hosts: $(docker ps --filter label=org.mlpipe.cluster=local --format '{{.Names}}' | sort | tr '\n' ' ')
MSG
