#!/usr/bin/env bash
# `make up`: the whole platform on local systemd containers, then the demo pipeline.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
export ANSIBLE_CONFIG=$top/ansible/ansible.cfg
changes=$(mktemp); trap 'rm -f "$changes"' EXIT
export MLPIPE_CHANGES_FILE=$changes
inv=$top/inventories/local

ansible/scripts/ensure-docker.sh
echo "== local cluster"
ansible/scripts/run-playbook.sh local-cluster ansible/local-cluster.yml -i "$inv"
echo "== site"
ansible/scripts/run-playbook.sh site ansible/site.yml -i "$inv"

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
