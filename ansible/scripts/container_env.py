#!/usr/bin/env python3
"""How systemd containers must run on this Docker host: the one place that decides.

Used by the local cluster (``ansible/local-cluster.yml``, ``--json``), the molecule
runner (``tests/molecule/run.sh``, ``--sh``) and the benchmarks:

* cgroup v2 host -> host cgroup namespace, ``/sys/fs/cgroup`` mounted read-write;
  cgroup v1 host -> private cgroup namespace, mounted read-only;
* one pip wheel cache directory on the host shared by every container
  (``MLPIPE_PIP_CACHE_DIR``, default ``/var/cache/mlpipe/pip``; created
  world-writable with the sticky bit, as services install as their own users),
  mounted at ``/var/cache/mlpipe-pip`` (where the base image's pip.conf points).

``--sh`` prints ``export`` lines (``MLPIPE_CGROUP_VERSION``, ``MLPIPE_CGROUPNS_MODE``,
``MLPIPE_CGROUP_VOLUME``, ``MLPIPE_PIP_CACHE_DIR``, ``MLPIPE_PIP_CACHE_VOLUME``);
``--json`` prints the same as one JSON object with lower-case keys.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PIP_CACHE_DEFAULT = "/var/cache/mlpipe/pip"
PIP_CACHE_IN_CONTAINER = "/var/cache/mlpipe-pip"


def cgroup_version(root: Path = CGROUP_ROOT) -> int:
    """2 when ``root`` is a cgroup2 mount (unified hierarchy), else 1."""
    # cgroup v2 exposes cgroup.controllers at its root; v1 (and hybrid) do not
    return 2 if (root / "cgroup.controllers").is_file() else 1


def settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    version = cgroup_version()
    pip_cache = env.get("MLPIPE_PIP_CACHE_DIR") or PIP_CACHE_DEFAULT
    return {
        "cgroup_version": str(version),
        "cgroupns_mode": "host" if version == 2 else "private",
        "cgroup_volume": f"{CGROUP_ROOT}:{CGROUP_ROOT}:{'rw' if version == 2 else 'ro'}",
        "pip_cache_dir": pip_cache,
        "pip_cache_volume": f"{pip_cache}:{PIP_CACHE_IN_CONTAINER}",
    }


def ensure_pip_cache(path: str) -> None:
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o1777)
    except OSError as exc:
        sys.exit(
            f"container-env: ERROR: cannot create the shared pip cache {path} ({exc}); "
            "set MLPIPE_PIP_CACHE_DIR to a directory you can write"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    form = parser.add_mutually_exclusive_group(required=True)
    form.add_argument("--sh", action="store_true", help="print shell export lines")
    form.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    values = settings()
    ensure_pip_cache(values["pip_cache_dir"])
    if args.json:
        print(json.dumps(values))
    else:
        print(
            "export "
            + " ".join(f"MLPIPE_{key.upper()}={shlex.quote(val)}" for key, val in values.items())
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
