"""What a Slurm job asks for: the ``[slurm]`` defaults, overridden per step by ``resources:``.

``pipeline.yaml``::

    tasks:
      train:
        task: train
        resources:
          partition: gpu            # sbatch --partition
          account: radio            # --account
          time_limit: "02:00:00"    # --time (minutes, MM:SS, HH:MM:SS, D-HH[:MM[:SS]])
          cpus: 4                   # --cpus-per-task
          memory: 8G                # --mem (a number, optionally K/M/G/T)
          extra: ["--qos=long"]     # further #SBATCH lines
          venv: /opt/mlpipe/venv    # environment activation (any of the three)
          modules: [python/3.11]
          conda_env: mlpipe

This module imports only :mod:`mlpipe.errors` (``mlpipe.config`` uses it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from mlpipe.errors import BadInput

TIME_RE = re.compile(
    r"^(\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d+|\d+-\d+:\d{1,2}|\d+-\d+:\d{1,2}:\d{1,2}"
    r"|UNLIMITED|INFINITE)$"
)
MEMORY_RE = re.compile(r"^\d+[KMGT]?$")
WORD_RE = re.compile(r"^[A-Za-z0-9_.+/@:-]+$")  # partition, account, module, conda env
OPTION_RE = re.compile(r'^--?[A-Za-z][A-Za-z0-9-]*(=[^"\n]*)?$')  # --key=value or --flag
# options the executor sets itself (its job name, log, work dir, dependencies)
RESERVED = ("job-name", "output", "error", "chdir", "dependency", "parsable", "wrap", "array")


@dataclass(frozen=True)
class Resources:
    partition: str = ""  # "" = the cluster's default partition
    account: str = ""
    time_limit: str = ""  # "" = the partition's default time
    cpus: int = 1
    memory: str = ""  # "" = the partition's default
    extra: tuple[str, ...] = ()
    venv: str = ""
    modules: tuple[str, ...] = ()
    conda_env: str = ""

    def with_step(self, overrides: Mapping[str, Any]) -> Resources:
        """These defaults with a step's (already checked) ``resources:`` on top."""
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()
        }
        return replace(self, **values)

    def sbatch_options(self) -> list[str]:
        """The ``--key=value`` options of the ``#SBATCH`` lines, extra lines last."""
        opts = [f"--cpus-per-task={self.cpus}"]
        for key, option in (
            ("partition", "partition"),
            ("account", "account"),
            ("time_limit", "time"),
            ("memory", "mem"),
        ):
            if getattr(self, key):
                opts.append(f"--{option}={getattr(self, key)}")
        return opts + [_quoted(line) for line in self.extra]


def _quoted(option: str) -> str:
    """``--comment=a b`` -> ``--comment="a b"`` (sbatch splits #SBATCH lines at blanks)."""
    key, eq, value = option.partition("=")
    return f'{key}="{value}"' if eq and any(c.isspace() for c in value) else option


KEYS = tuple(f.name for f in fields(Resources))


def split_lines(text: str) -> tuple[str, ...]:
    """``"--qos=long; --exclusive"`` or one option a line -> the options."""
    return tuple(p.strip() for p in re.split(r"[;\n]", text) if p.strip())


def check(res: Resources, where: Callable[[str], str]) -> None:
    """BadInput naming ``where(key)`` for the first unusable value."""
    for key in ("partition", "account"):
        value = getattr(res, key)
        if value and not WORD_RE.match(value):
            raise BadInput(f"{where(key)}: a Slurm {key} name (no spaces), got {value!r}")
    if res.time_limit and not TIME_RE.match(res.time_limit):
        raise BadInput(
            f"{where('time_limit')}: a Slurm time like 30, 01:30:00 or 1-12:00:00, "
            f"got {res.time_limit!r}"
        )
    if isinstance(res.cpus, bool) or not isinstance(res.cpus, int) or res.cpus < 1:
        raise BadInput(f"{where('cpus')}: a whole number >= 1, got {res.cpus!r}")
    if res.memory and not MEMORY_RE.match(res.memory):
        raise BadInput(f"{where('memory')}: a size like 4096M or 8G, got {res.memory!r}")
    for line in res.extra:
        if "\n" in line or not OPTION_RE.match(line):
            raise BadInput(
                f"{where('extra')}: each extra #SBATCH line is one option like --qos=long "
                "(--key=value without double quotes, or --flag), "
                f"got {line!r}"
            )
        name = line.lstrip("-").split("=", 1)[0].split()[0]
        if name in RESERVED:
            raise BadInput(f"{where('extra')}: --{name} is set by mlpipe itself; remove {line!r}")
    if res.venv and not res.venv.startswith("/"):
        raise BadInput(f"{where('venv')}: an absolute path on the nodes, got {res.venv!r}")
    for module in res.modules:
        if not WORD_RE.match(module):
            raise BadInput(f"{where('modules')}: a module name like python/3.11, got {module!r}")
    if res.conda_env and not WORD_RE.match(res.conda_env):
        raise BadInput(
            f"{where('conda_env')}: a conda environment name or path, got {res.conda_env!r}"
        )


def parse_step_resources(value: Any, where: str) -> dict[str, Any]:
    """A step's ``resources:`` mapping, checked; errors name ``where`` (file and step) and key."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadInput(f"{where}: expected a mapping of {', '.join(KEYS)}")
    unknown = sorted(str(k) for k in value if k not in KEYS)
    if unknown:
        raise BadInput(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    out: dict[str, Any] = {}
    for key, raw in value.items():
        if key in ("extra", "modules"):
            items = [raw] if isinstance(raw, str) else raw
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise BadInput(f"{where}.{key}: expected a list of strings, got {raw!r}")
            out[key] = list(items)
        elif key == "cpus":
            out[key] = raw
        elif isinstance(raw, int | float) and not isinstance(raw, bool) and key == "time_limit":
            out[key] = str(raw)  # time_limit: 30 (minutes)
        elif not isinstance(raw, str):
            raise BadInput(f"{where}.{key}: expected a string, got {raw!r}")
        else:
            out[key] = raw
    check(Resources().with_step(out), lambda key: f"{where}.{key}")
    return out
