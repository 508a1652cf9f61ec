#!/usr/bin/env bash
# Print shell exports describing how systemd containers must run on this Docker
# host (sourced by the molecule runner and the Makefile):
#   cgroup v1 -> private cgroup namespace, read-only /sys/fs/cgroup mount
#   cgroup v2 -> host cgroup namespace, read-write /sys/fs/cgroup mount
set -euo pipefail
if [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = cgroup2fs ]; then
  echo "export MLPIPE_CGROUP_VERSION=2 MLPIPE_CGROUPNS_MODE=host MLPIPE_CGROUP_VOLUME=/sys/fs/cgroup:/sys/fs/cgroup:rw"
else
  echo "export MLPIPE_CGROUP_VERSION=1 MLPIPE_CGROUPNS_MODE=private MLPIPE_CGROUP_VOLUME=/sys/fs/cgroup:/sys/fs/cgroup:ro"
fi
# One pip wheel cache on the host for every container (see build-base-image.sh);
# world-writable with the sticky bit, as services install as their own users.
pip_cache=${MLPIPE_PIP_CACHE_DIR:-/var/cache/mlpipe/pip}
mkdir -p "$pip_cache" && chmod 1777 "$pip_cache"
echo "export MLPIPE_PIP_CACHE_VOLUME=$pip_cache:/var/cache/mlpipe-pip"
