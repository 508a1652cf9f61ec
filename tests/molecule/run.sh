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

# Scenarios run MOLECULE_JOBS at a time (default 1). Two at a time gained
# nothing on this 2-core machine (CPU-bound: 1183 s against 1203 s one by one)
# and once failed the docker scenario: its nested dockerd on a cgroup v1 host
# races the other containers' cgroups ("error adding pid ... to cgroups:
# .../cgroup.procs: no such file or directory" on a `docker exec`). Every
# scenario has its own container names and network, so more jobs are possible
# on a bigger machine. Each one's output goes to a log printed whole when it
# ends. Longest first (as measured), so that the last to start is a short one.
jobs_max=${MOLECULE_JOBS:-1}
case $jobs_max in '' | *[!0-9]* | 0)
  echo "test-roles: ERROR: MOLECULE_JOBS=$jobs_max must be a whole number of at least 1" >&2
  exit 2 ;;
esac
order=(ngas pipeline mlflow slurm daliuge webserver firewall docker postgresql mlpipe_package datadisk common)
queue=()
for r in "${order[@]}"; do
  for want in "${roles[@]}"; do [ "$want" = "$r" ] && queue+=("$r"); done
done
for want in "${roles[@]}"; do
  case " ${order[*]} " in *" $want "*) ;; *) queue+=("$want") ;; esac
done

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
passed=0 failed=0 skipped=0
results=()

# What an earlier run of ROLE's scenario left (a killed run never reaches its destroy
# step): its containers and networks, all named mlpipe-mol-ROLE or mlpipe-mol-ROLE-*,
# removed before it starts. So no scenario begins with a destroy step (one Ansible run
# of 8-17 s each), and each run gets a fresh ephemeral directory of its own (molecule's
# default, ~/.ansible/tmp/molecule.<hash of the role's directory name>.default, is
# shared by every clone of the repository on the machine).
clear_leftovers() {  # ROLE
  local r=$1 names
  names=$(docker container ls -a --format '{{.Names}}' | grep -E "^mlpipe-mol-$r(-|\$)" || true)
  if [ -n "$names" ]; then
    # shellcheck disable=SC2086  # one name per word
    echo "test-roles: removing the containers an earlier run of $r left:" $names
    # shellcheck disable=SC2086
    docker container rm -f $names >/dev/null
  fi
  names=$(docker network ls --format '{{.Name}}' | grep -E "^mlpipe-mol-$r(-|\$)" || true)
  if [ -n "$names" ]; then
    # shellcheck disable=SC2086
    echo "test-roles: removing the networks an earlier run of $r left:" $names
    # shellcheck disable=SC2086
    docker network rm $names >/dev/null
  fi
}

run_one() {  # ROLE: its scenario, output into $logs/ROLE.log, "rc seconds" into $logs/ROLE.rc
  local r=$1 start rc=0
  start=$(date +%s)
  clear_leftovers "$r" >"$logs/$r.log" 2>&1
  (cd "roles/$r" && MLPIPE_MOLECULE_PREFIX="mlpipe-mol-$r" \
      MOLECULE_EPHEMERAL_DIRECTORY="$logs/$r.molecule" \
      molecule -c "$top/tests/molecule/base.yml" test) >>"$logs/$r.log" 2>&1 || rc=$?
  echo "$rc $(( $(date +%s) - start ))" >"$logs/$r.rc"
}

declare -A pid_role=()
finish() {  # PID: print the finished scenario's log and count its result
  local r=${pid_role[$1]} rc secs
  unset "pid_role[$1]"
  read -r rc secs <"$logs/$r.rc"
  echo "=== molecule test: role $r (output follows)"
  cat "$logs/$r.log"
  if [ "$rc" -eq 0 ]; then
    echo "=== molecule test: role $r PASSED in $secs s"
    results+=("PASSED $r ($secs s)"); passed=$((passed + 1))
  else
    echo "=== molecule test: role $r FAILED (exit $rc) in $secs s"
    results+=("FAILED $r ($secs s)"); failed=$((failed + 1))
  fi
}

for r in "${queue[@]}"; do
  skip_reason=""
  if [ -x "roles/$r/molecule/default/skip-unless.sh" ]; then
    skip_reason=$("roles/$r/molecule/default/skip-unless.sh" || true)
  fi
  if [ -n "$skip_reason" ]; then
    echo "SKIPPED: role $r: $skip_reason"
    results+=("SKIPPED $r ($skip_reason)"); skipped=$((skipped + 1)); continue
  fi
  while [ "${#pid_role[@]}" -ge "$jobs_max" ]; do
    done_pid=""
    wait -n -p done_pid "${!pid_role[@]}" || true
    finish "$done_pid"
  done
  echo "=== molecule test: role $r started $(date -u +%H:%M:%S)"
  run_one "$r" &
  pid_role[$!]=$r
done
while [ "${#pid_role[@]}" -gt 0 ]; do
  done_pid=""
  wait -n -p done_pid "${!pid_role[@]}" || true
  finish "$done_pid"
done

echo
echo "molecule results:"
printf '  %s\n' "${results[@]}"
echo "roles: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
