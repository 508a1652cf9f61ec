#!/usr/bin/env bash
# Prints why the ngas scenario cannot run here (tests/molecule/run.sh then
# reports it as SKIPPED), or nothing when it can. The scenario builds real NGAS
# and needs its source: NGAS_SOURCE, an NGAS git checkout (or source tree) on
# this machine, or a git URL the test container can clone.
if [ -z "${NGAS_SOURCE:-}" ]; then
  echo "NGAS_SOURCE is not set; the ngas scenario builds real NGAS from source and the upstream repository is not reachable from CI. Set NGAS_SOURCE=/path/to/ngas-checkout (a git checkout holding ${NGAS_VERSION:-v12.0} and ${NGAS_UPGRADE_TO:-master}) to run it."
fi
