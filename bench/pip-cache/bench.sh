#!/usr/bin/env bash
# Effect of the shared pip wheel cache on package installs in the local cluster
# and molecule containers (ansible/scripts/container_env.py, base image's
# /etc/pip.conf). Installs the same package set into a fresh venv in two fresh
# containers, first with an empty cache directory, then with the cache the first
# one filled, and prints the times and their ratio.
#   BENCH_PIP_PACKAGES  what to install (default: the MLflow release mlpipe pins)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
# default: the MLflow release the mlpipe wheel pins (tasks_py/pyproject.toml, the one place)
pin=$("$top/.venv/bin/python" -c 'import sys, tomllib; deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]["ml"]; print(next(d.split("#")[0].strip() for d in deps if d.startswith("mlflow==")))' "$top/tasks_py/pyproject.toml")
read -r -a packages <<< "${BENCH_PIP_PACKAGES:-$pin}"
"$top/ansible/scripts/ensure-docker.sh"
image=$("$top/ansible/scripts/build-base-image.sh")
cache=$(mktemp -d /tmp/mlpipe-bench-pip-XXXXXX)
chmod 1777 "$cache"
name=mlpipe-bench-pip-$$
cleanup() { docker rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$cache"; }
trap cleanup EXIT

one_install() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run -d --name "$name" --label org.mlpipe.managed=true --label org.mlpipe.kind=bench \
    -v "$cache:/var/cache/mlpipe-pip" "$image" sleep infinity >/dev/null
  # venv support is not what is measured
  docker exec "$name" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null' >&2
  docker exec "$name" python3 -m venv /tmp/venv
  local start end
  start=$(date +%s%N)
  docker exec "$name" /tmp/venv/bin/pip install -q --disable-pip-version-check "${packages[@]}" >&2
  end=$(date +%s%N)
  echo $(( (end - start) / 1000000 ))
}

echo "bench pip-cache: installing '${packages[*]}' into a fresh container venv"
cold=$(one_install)
echo "bench pip-cache: the cache now holds $(du -sh "$cache" | cut -f1)"
warm=$(one_install)
printf 'pip install, empty cache : %6d ms\n' "$cold"
printf 'pip install, warm cache  : %6d ms\n' "$warm"
printf 'warm / cold              : %6d %%\n' "$(( 100 * warm / cold ))"
