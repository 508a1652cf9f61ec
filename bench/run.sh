#!/usr/bin/env bash
# `make bench`: benchmarks printed as ratios measured side by side.
# BENCH_SIZE_MB (default 256) sets the artifact size; NGAS_URL uses a real NGAS
# instead of the protocol double.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v curl >/dev/null || { echo "bench: needs curl (apt-get install curl)" >&2; exit 1; }
python bench/artifacts/bench.py "$@"
