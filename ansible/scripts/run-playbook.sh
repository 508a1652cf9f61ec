#!/usr/bin/env bash
# run-playbook.sh NAME PLAYBOOK [ansible-playbook args...]
# Runs a playbook, keeps its output, and ends with one line saying whether it
# changed anything: "NAME: no changes" or "NAME: N changes (host: n, ...)".
# Writes the total number of changes to $MLPIPE_CHANGES_FILE when set.
set -euo pipefail
name=$1; shift
top=$(cd "$(dirname "$0")/../.." && pwd)
export ANSIBLE_CONFIG=${ANSIBLE_CONFIG:-$top/ansible/ansible.cfg}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
ansible-playbook "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
summary=$(awk '/^PLAY RECAP/{r=1; next} r && /changed=/{h=$1; for(i=1;i<=NF;i++) if ($i ~ /^changed=/){split($i,a,"="); if (a[2]>0) {printf "%s%s: %s", sep, h, a[2]; sep=", "}; t+=a[2]}} END{printf "|%d", t}' "$log")
total=${summary##*|}; hosts=${summary%|*}
[ -n "${MLPIPE_CHANGES_FILE:-}" ] && echo "$total" >> "$MLPIPE_CHANGES_FILE"
if [ "$rc" -ne 0 ]; then
  echo "$name: FAILED (ansible-playbook exit $rc); see the task output above"
  exit "$rc"
fi
if [ "$total" -eq 0 ]; then echo "$name: no changes"; else echo "$name: $total changes ($hosts)"; fi
