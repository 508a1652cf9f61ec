#!/usr/bin/env bash
# Run the molecule scenario of every role (or of ROLE=name) with the shared
# base configuration. Usage: tests/molecule/run.sh [role ...]
# A role whose scenario needs something this machine lacks prints a SKIPPED
# line saying why; it never counts as passed.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
export PATH="$top/.venv/bin:$PATH"

all_roles=()
for d in roles/*/molecule/default; do
  r=${d#roles/}; all_roles+=("${r%%/*}")
done

roles=("$@")
if [ ${#roles[@]} -eq 0 ]; then roles=("${all_roles[@]}"); fi
for r in "${roles[@]}"; do
  if [ ! -f "roles/$r/molecule/default/molecule.yml" ]; then
    echo "test-roles: ERROR: unknown role '$r'. Roles with a molecule scenario: ${all_roles[*]}" >&2
    exit 2
  fi
done

ansible/scripts/ensure-docker.sh
MLPIPE_BASE_IMAGE_REF=$(ansible/scripts/build-base-image.sh)
export MLPIPE_BASE_IMAGE_REF
eval "$(python3 ansible/scripts/container_env.py --sh)"

passed=0 failed=0 skipped=0
results=()
for r in "${roles[@]}"; do
  skip_reason=""
  if [ -x "roles/$r/molecule/default/skip-unless.sh" ]; then
    skip_reason=$("roles/$r/molecule/default/skip-unless.sh" || true)
  fi
  if [ -n "$skip_reason" ]; then
    echo "SKIPPED: role $r: $skip_reason"
    results+=("SKIPPED $r ($skip_reason)"); skipped=$((skipped + 1)); continue
  fi
  echo "=== molecule test: role $r"
  start=$(date +%s)
  if (cd "roles/$r" && MLPIPE_MOLECULE_PREFIX="mlpipe-mol-$r" \
        molecule -c "$top/tests/molecule/base.yml" test); then
    results+=("PASSED $r ($(( $(date +%s) - start )) s)"); passed=$((passed + 1))
  else
    results+=("FAILED $r ($(( $(date +%s) - start )) s)"); failed=$((failed + 1))
  fi
done

echo
echo "molecule results:"
printf '  %s\n' "${results[@]}"
echo "roles: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
