#!/usr/bin/env bash
# `make bench`: benchmarks printed as ratios measured side by side.
#   BENCH=artifacts|pip-cache|serve|models|load-raw|all (default all)
#   artifacts: BENCH_SIZE_MB (default 256) sets the artifact size; NGAS_URL uses
#              a real NGAS instead of the protocol double.
#   pip-cache: BENCH_PIP_PACKAGES (default mlflow at the role's pin).
#   serve: mlpipe serve vs mlflow models serve of the same version (latency p50/p99 of
#          one row, throughput at BENCH_SERVE_CONCURRENCY); BENCH_SERVE_REQUESTS, BENCH_SERVE_LOAD.
#   models: a registered version through the read cache, first vs second load (time and
#           requests counted by a proxy), warm cached vs a local directory; BENCH_MODEL_ROUNDS.
#   load-raw: mlpipe load-raw of BENCH_LOAD_FILES (1000) small raw files at [ngas] concurrency
#           1 and BENCH_LOAD_CONCURRENCY ("4 8") vs a sequential curl loop; NGAS as for artifacts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
which=${BENCH:-all}
case $which in artifacts|pip-cache|serve|models|load-raw|all) ;; *)
  echo "bench: unknown BENCH=$which; choose artifacts, pip-cache, serve, models, load-raw or all" >&2; exit 2;;
esac
if [ "$which" = artifacts ] || [ "$which" = load-raw ] || [ "$which" = all ]; then
  if ! command -v curl >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      echo "bench: installing curl (the raw-NGAS baseline)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl >/dev/null
    else
      echo "bench: needs curl for the raw-NGAS baseline: install the Debian package curl" >&2; exit 1
    fi
  fi
  if [ "$which" != load-raw ]; then python bench/artifacts/bench.py "$@"; fi
fi
if [ "$which" = pip-cache ] || [ "$which" = all ]; then
  bench/pip-cache/bench.sh
fi
if [ "$which" = serve ] || [ "$which" = all ]; then
  python bench/serve/bench.py
fi
if [ "$which" = models ] || [ "$which" = all ]; then
  python bench/models/bench.py
fi
if [ "$which" = load-raw ] || [ "$which" = all ]; then
  python bench/load-raw/bench.py
fi
