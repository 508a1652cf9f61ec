#!/usr/bin/env bash
# timed.sh STAGE CMD...: run CMD and print how long the stage took.
set -uo pipefail
stage=$1; shift
start=$(date +%s)
echo "=== stage $stage: start $(date -u +%H:%M:%S)"
"$@"; rc=$?
echo "=== stage $stage: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $(( $(date +%s) - start )) s"
exit $rc
