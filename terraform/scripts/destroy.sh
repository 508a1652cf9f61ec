#!/usr/bin/env bash
# make destroy: tear the GCP platform of one environment down, after typing the
# project id (or MLPIPE_DESTROY_CONFIRM=<project id> for unattended use).
# Buckets holding objects survive unless buckets_force_destroy = true (docs/gcp.md).
set -euo pipefail
# shellcheck source=terraform/scripts/common.sh
. "$(dirname "$0")/common.sh"
cd "$top"

check_common
stop_if_missing "make destroy"

cat <<MSG
make destroy: this DELETES every VM, disk, firewall rule, the network, the service
accounts and (when empty, or with buckets_force_destroy) the buckets of environment
'$env_name' in GCP project '$project'. Data on the VMs is lost.
MSG
if [ -n "${MLPIPE_DESTROY_CONFIRM:-}" ]; then
  answer=$MLPIPE_DESTROY_CONFIRM
else
  read -r -p "Type the project id ($project) to confirm: " answer || answer=
fi
if [ "$answer" != "$project" ]; then
  echo "make destroy: '$answer' is not '$project': aborted, nothing was destroyed." >&2
  exit 1
fi

tf_init
tf destroy -input=false -auto-approve
rm -f "$inv_dir/hosts.yml" "$known_hosts"
echo "make destroy: environment '$env_name' of project '$project' destroyed (the state bucket is kept)."
