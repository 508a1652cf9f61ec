"""The one configuration of the mlpipe package.

Sources, later ones win:

1. defaults (the dataclasses below);
2. a TOML file: ``$MLPIPE_CONFIG`` if set, else ``/etc/mlpipe/mlpipe.toml``
   (a missing default file is fine, a missing ``$MLPIPE_CONFIG`` file is an error);
3. environment variables ``MLPIPE_<SECTION>_<KEY>``, e.g. ``MLPIPE_NGAS_URL``,
   ``MLPIPE_CACHE_MODE``, ``MLPIPE_CACHE_MAX_SIZE``.

Adding a section: write a frozen dataclass whose fields all have defaults and
add it as a field of :class:`Config` (the field name is the TOML section name).
Field types supported by the loader: ``str``, ``int``, ``float``, ``bool``,
``Path`` and :data:`ByteSize` (an ``int`` that also accepts ``"10G"``). Fields
whose name contains ``token``, ``password`` or ``secret`` are masked by
:func:`render`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, NewType, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit, urlunsplit

from mlpipe.errors import BadInput

DEFAULT_CONFIG_PATH = Path("/etc/mlpipe/mlpipe.toml")
ENV_CONFIG = "MLPIPE_CONFIG"
ENV_PREFIX = "MLPIPE_"

ByteSize = NewType("ByteSize", int)
"""An int number of bytes; config values may be written ``"512M"``, ``"10G"``, ``1048576``."""

CacheMode = Literal["auto", "good", "bad", "offline"]
CACHE_MODES: tuple[CacheMode, ...] = get_args(CacheMode)
ErrorMetric = Literal["rmse", "mae"]
SECRET_WORDS = ("token", "password", "secret")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mlpipe"


@dataclasses.dataclass(frozen=True)
class NgasConfig:
    """``[ngas]``: where the NGAS archive server is and how hard to try."""

    url: str = "http://127.0.0.1:7777"
    timeout: float = 60.0  # seconds per socket operation
    retries: int = 4  # extra attempts after the first on connection errors and 5xx
    backoff: float = 0.5  # first retry delay in seconds, doubled each time
    username: str = ""  # HTTP Basic credentials when the server's authorization is on
    password: str = ""
    # requests a batch (load-raw's files) keeps in flight at once: below the server's
    # MaxSimReqs (beyond it NGAS answers 503), and at most 4 for NGAS on SQLite (more
    # concurrent writers crashed NGAS 12 there); 1 sends them one after another
    concurrency: int = 4


@dataclasses.dataclass(frozen=True)
class CacheConfig:
    """``[cache]``: the local read cache every NGAS/MLflow read goes through."""

    dir: Path = dataclasses.field(default_factory=_default_cache_dir)
    max_size: ByteSize = ByteSize(10 * 1024**3)
    mode: CacheMode = "auto"
    probe_max_latency_ms: float = 250.0  # slower STATUS round trip -> "bad"
    probe_min_throughput_mbps: float = 5.0  # slower recent downloads (MB/s) -> "bad"
    probe_ttl: float = 60.0  # seconds a probe result is reused
    min_free: ByteSize = ByteSize(256 * 1024**2)  # a download must leave this free on the disk
    lock_timeout: float = 600.0  # s to wait for another process's download of the same entry


@dataclasses.dataclass(frozen=True)
class MlflowConfig:
    """``[mlflow]``: the tracking server and where artifacts go."""

    tracking_uri: str = "http://127.0.0.1:5000"
    artifact_root: str = ""  # e.g. ngas://ngas-host:7777/mlflow
    tracking_token: str = ""


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """``[pipeline]``: where the tasks keep their data and runs."""

    data_prefix: str = "mlpipe/data"  # NGAS file id prefix of raw/preprocessed/... files
    experiment: str = "mlpipe"  # MLflow experiment of task runs started outside a pipeline
    max_workers: int = 2  # tasks the local executor runs at once


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """``[model]``: the site's model plugin and its registered model name."""

    plugin: str = "weather"  # entry point name (group mlpipe.models) or module:Class
    name: str = "seattle-weather"  # registered model name in the MLflow registry
    alias: str = "production"  # the alias inference resolves at run time


@dataclasses.dataclass(frozen=True)
class DaliugeConfig:
    """``[daliuge]``: the island ``--executor daliuge`` submits to; how steps run on workers."""

    url: str = "http://127.0.0.1:8001"  # the Data Island Manager's REST API
    python: str = "/opt/mlpipe/venv/bin/python"  # on the workers: python with mlpipe
    config_file: str = "/etc/mlpipe/mlpipe.toml"  # MLPIPE_CONFIG of the steps on the workers
    env_file: str = "/etc/mlpipe/credentials.env"  # KEY=value lines for the steps ("" none)
    work_dir: str = ""  # on the workers: job/outcome files ("" = the session's workspace)
    poll_interval: float = 0.5  # first status poll delay (s), doubled up to poll_max
    poll_max: float = 5.0
    timeout: float = 60.0  # s the island or a node manager may not answer before the run fails
    request_timeout: float = 10.0  # s per REST request


@dataclasses.dataclass(frozen=True)
class SlurmConfig:
    """``[slurm]``: how ``--executor slurm`` / ``--via slurm`` submit steps (docs/slurm.md)."""

    work_dir: str = ""  # shared by this host and the nodes (a site's shared filesystem); required
    partition: str = ""  # job defaults; a step's resources: overrides them ("" = Slurm's default)
    account: str = ""
    time_limit: str = "01:00:00"
    cpus: int = 1
    memory: str = ""
    sbatch_extra: str = ""  # further #SBATCH options, separated by ";" or newlines
    venv: str = ""  # environment activation on the nodes: a venv, modules, a conda env
    modules: str = ""  # space-separated, for `module load`
    conda_env: str = ""
    python: str = "/opt/mlpipe/venv/bin/python"  # on the nodes ("python" = the activated one's)
    env_file: str = ""  # KEY=value lines sourced by the job (e.g. /etc/mlpipe/credentials.env)
    poll_interval: float = 1.0  # first sacct poll delay (s), doubled up to poll_max
    poll_max: float = 10.0
    command_timeout: float = 60.0  # s per sbatch/sacct/squeue/scancel call
    unknown_grace: float = 120.0  # s a job may be unknown to sacct and squeue (or sacct fail)
    log_tail: int = 20  # lines of a failed job's log in its error
    # a remote cluster's login node over SSH ("" = sbatch here); docs/slurm.md
    host: str = ""
    user: str = ""  # "" = this user's name
    port: int = 22
    key_file: str = ""  # private key (required with host; no agent, no password)
    jump_host: str = ""  # [user@]host[:port] to go through (ProxyJump), same key and known_hosts
    known_hosts: str = ""  # the host keys of host (and jump_host); required with host
    remote_work_dir: str = ""  # on the cluster's shared filesystem; required with host
    offline: bool = False  # compute nodes cannot reach MLflow/NGAS: stage in, pull back, upload
    connect_timeout: float = 15.0  # s to connect and authenticate over SSH


@dataclasses.dataclass(frozen=True)
class WatchConfig:
    """``[watch]``: the FTP(S) drop ``mlpipe watch ftp`` polls and the pipeline it starts."""

    name: str = "ftp"  # names the state database <state_dir>/<name>.sqlite
    host: str = ""  # the FTP server; required
    port: int = 21
    user: str = "anonymous"
    password: str = ""
    tls: bool = True  # explicit FTPS (AUTH TLS), certificate verified; false = plain FTP
    ca_file: str = ""  # CA bundle (PEM) verifying the server ("" = the system CAs)
    directory: str = "/"  # polled directory (not recursive)
    pattern: str = "*"  # fnmatch pattern of the files taken
    poll_interval: float = 30.0  # seconds between polls
    stable_polls: int = 2  # polls with the same size and mtime before a file is taken
    timeout: float = 60.0  # seconds per FTP socket operation
    state_dir: Path = Path("/var/lib/mlpipe/watch")  # state database and partial downloads
    pipeline: str = ""  # pipeline.yaml started per file; it declares the input below
    input: str = "incoming"  # the pipeline input (inputs:) given the archived file
    executor: str = "local"  # local, daliuge or slurm


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """``[serve]``: ``mlpipe serve``, a registered model's alias over HTTP (docs/serve.md)."""

    model: str = ""  # the registered model served ("" = [model] name)
    alias: str = ""  # the alias followed ("" = [model] alias)
    host: str = "127.0.0.1"  # address to bind: the loopback unless a site says otherwise
    port: int = 8100
    poll_interval: float = 10.0  # seconds between two looks at the alias
    poll_max: float = 300.0  # the retry delay doubles up to this while MLflow fails
    check_input: str = ""  # scoring JSON a new version must answer ("" = its own input example)
    max_body: ByteSize = ByteSize(1024**2)  # largest request body (413 beyond)
    max_concurrency: int = 64  # connections and requests at once (503 beyond)
    access_log: bool = False  # one log line per request


@dataclasses.dataclass(frozen=True)
class MonitorConfig:
    """``[monitor]``: ``mlpipe monitor run``, the erosion monitor (docs/pipeline.md)."""

    model: str = ""  # the registered model monitored ("" = [model] name)
    experiments: str = ""  # experiments whose infer runs are batches, comma-separated ("" = all)
    truth_prefixes: str = ""  # NGAS prefixes of the truth files ("" = <data_prefix>/preprocessed/)
    key: str = "date"  # the column joining predictions and truth
    target: str = "target"  # the truth column of the truth files
    prediction: str = ""  # the prediction column ("" = the one named predicted*)
    features: str = ""  # drift features, comma-separated ("" = the model plugin's features)
    bins: int = 10  # PSI bins: quantiles of the training data
    error_metric: ErrorMetric = "rmse"  # the error compared with error_threshold
    error_threshold: float = 0.0  # above it: retrain (0 = the error triggers nothing)
    psi_threshold: float = 0.25  # largest feature PSI above it: retrain (0 = drift never does)
    min_coverage: float = 1.0  # share of a batch's rows with truth before it is evaluated
    lookback_days: float = 30.0  # infer runs started this long ago or later are batches
    retrain_unit: str = ""  # systemd unit started with systemctl start --no-block
    retrain_command: str = ""  # else this command, started in the background
    min_interval: float = 3600.0  # seconds from one trigger to the next
    state_dir: Path = Path("/var/lib/mlpipe/monitor")  # <model>.json: the pending retrain


@dataclasses.dataclass(frozen=True)
class Config:
    """The effective configuration. Each field is one TOML section."""

    ngas: NgasConfig = dataclasses.field(default_factory=NgasConfig)
    cache: CacheConfig = dataclasses.field(default_factory=CacheConfig)
    mlflow: MlflowConfig = dataclasses.field(default_factory=MlflowConfig)
    pipeline: PipelineConfig = dataclasses.field(default_factory=PipelineConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    daliuge: DaliugeConfig = dataclasses.field(default_factory=DaliugeConfig)
    slurm: SlurmConfig = dataclasses.field(default_factory=SlurmConfig)
    watch: WatchConfig = dataclasses.field(default_factory=WatchConfig)
    serve: ServeConfig = dataclasses.field(default_factory=ServeConfig)
    monitor: MonitorConfig = dataclasses.field(default_factory=MonitorConfig)
    source: str = dataclasses.field(default="defaults", compare=False)


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(value: object, where: str) -> int:
    """``"10G"`` / ``"512MiB"`` / ``1048576`` -> bytes (binary units)."""
    if isinstance(value, bool):
        raise BadInput(f"{where}: expected a size like 10G or 1048576, got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise BadInput(f"{where}: expected a size like 10G or 1048576, got {value!r}")
        size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])
    if size < 0:
        raise BadInput(f"{where}: a size cannot be negative ({value!r})")
    return size


def _coerce(value: object, typ: Any, where: str) -> object:
    from_env = isinstance(value, str)
    try:
        if typ is ByteSize:
            return ByteSize(parse_size(value, where))
        if typ is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not from_env):
                raise ValueError(value)
            return int(str(value).strip())
        if typ is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(str(value).strip()) if from_env else float(value)  # type: ignore[arg-type]
        if typ is Path:
            return Path(str(value)).expanduser()
        if typ is str:
            if not isinstance(value, str):
                raise ValueError(value)
            return value
        if get_origin(typ) is Literal:
            if value not in get_args(typ):
                choices = ", ".join(map(str, get_args(typ)))
                raise BadInput(f"{where}: must be one of {choices}, got {value!r}")
            return value
    except (TypeError, ValueError):
        name = getattr(typ, "__name__", str(typ))
        raise BadInput(f"{where}: expected {name}, got {value!r}") from None
    raise BadInput(f"{where}: unsupported config type {typ!r}")  # programming error


def _section_types() -> dict[str, type]:
    hints = get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if f.name != "source"}


def _build_section(
    name: str, cls: type, file_values: Mapping[str, object], path: Path, env: Mapping[str, str]
) -> object:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(file_values) - known)
    if unknown:
        raise BadInput(
            f"{path}: unknown key(s) {', '.join(unknown)} in [{name}]; "
            f"known keys: {', '.join(sorted(known))}"
        )
    kwargs: dict[str, object] = {}
    for key in known:
        var = f"{ENV_PREFIX}{name.upper()}_{key.upper()}"
        if var in env:
            kwargs[key] = _coerce(env[var], hints[key], f"environment variable {var}")
        elif key in file_values:
            kwargs[key] = _coerce(file_values[key], hints[key], f"{path}: [{name}] {key}")
    section = cls(**kwargs)
    _validate(name, section, path)
    return section


def _validate(name: str, section: object, path: Path) -> None:
    def where(key: str) -> str:
        return f"[{name}] {key} (file {path} or env MLPIPE_{name.upper()}_{key.upper()})"

    if isinstance(section, NgasConfig):
        parts = urlsplit(section.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"{where('url')}: must look like http://host:7777, got {section.url!r}")
        if section.retries < 0 or section.timeout <= 0 or section.backoff < 0:
            raise BadInput(f"{where('retries')}: retries/backoff must be >= 0 and timeout > 0")
        if not 1 <= section.concurrency <= 64:
            raise BadInput(
                f"{where('concurrency')}: must be 1 to 64 (below the server's MaxSimReqs), "
                f"got {section.concurrency}"
            )
    if isinstance(section, PipelineConfig) and section.max_workers < 1:
        raise BadInput(f"{where('max_workers')}: must be >= 1, got {section.max_workers}")
    if isinstance(section, ModelConfig) and not (section.plugin and section.name):
        raise BadInput(f"{where('plugin')}: [model] plugin and name must not be empty")
    if isinstance(section, SlurmConfig):
        _validate_slurm(section, where)
    if isinstance(section, WatchConfig):
        _validate_watch(section, where)
    if isinstance(section, ServeConfig):
        validate_serve(section, where)
    if isinstance(section, MonitorConfig):
        validate_monitor(section, where)
    if isinstance(section, DaliugeConfig):
        parts = urlsplit(section.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(
                f"{where('url')}: must look like http://dlg-head:8001, got {section.url!r}"
            )
        if not section.python.startswith("/"):
            raise BadInput(
                f"{where('python')}: an absolute path on the workers, got {section.python!r}"
            )
        for key in ("poll_interval", "poll_max", "timeout", "request_timeout"):
            if getattr(section, key) <= 0:
                raise BadInput(f"{where(key)}: must be > 0 seconds, got {getattr(section, key)}")


def _validate_slurm(section: SlurmConfig, where: Callable[[str], str]) -> None:
    from mlpipe.slurm import resources

    res = resources.Resources(
        section.partition,
        section.account,
        section.time_limit,
        section.cpus,
        section.memory,
        resources.split_lines(section.sbatch_extra),
        section.venv,
        tuple(section.modules.split()),
        section.conda_env,
    )
    names = {"extra": "sbatch_extra"}
    resources.check(res, lambda key: where(names.get(key, key)))
    if section.work_dir and not section.work_dir.startswith("/"):
        raise BadInput(f"{where('work_dir')}: an absolute path, got {section.work_dir!r}")
    for key in ("poll_interval", "poll_max", "command_timeout", "unknown_grace"):
        if getattr(section, key) <= 0:
            raise BadInput(f"{where(key)}: must be > 0 seconds, got {getattr(section, key)}")
    if not section.python or section.log_tail < 0:
        raise BadInput(f"{where('python')}: python must be set and log_tail >= 0")
    from mlpipe.slurm.transport import check_config

    check_config(section, where)


def _validate_watch(section: WatchConfig, where: Callable[[str], str]) -> None:
    if not 0 < section.port < 65536:
        raise BadInput(f"{where('port')}: a TCP port 1-65535, got {section.port}")
    if section.poll_interval <= 0 or section.timeout <= 0:
        raise BadInput(f"{where('poll_interval')}: poll_interval and timeout must be > 0 seconds")
    if section.stable_polls < 1:
        raise BadInput(f"{where('stable_polls')}: must be >= 1, got {section.stable_polls}")
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", section.name):
        raise BadInput(
            f"{where('name')}: letters, digits, _ . - (it names a file), got {section.name!r}"
        )


def validate_serve(section: ServeConfig, where: Callable[[str], str]) -> None:
    if not 0 < section.port < 65536:
        raise BadInput(f"{where('port')}: a TCP port 1-65535, got {section.port}")
    if section.poll_interval <= 0 or section.poll_max < section.poll_interval:
        raise BadInput(
            f"{where('poll_interval')}: poll_interval must be > 0 seconds and poll_max >= it, "
            f"got {section.poll_interval} and {section.poll_max}"
        )
    if section.max_body < 1 or section.max_concurrency < 1:
        raise BadInput(f"{where('max_body')}: max_body and max_concurrency must be >= 1")
    if not section.host.strip():
        raise BadInput(f"{where('host')}: an address to bind, e.g. 127.0.0.1")


UNIT_RE = re.compile(r"^[A-Za-z0-9:_.@\-]+\.service$")


def split_names(text: str) -> list[str]:
    """``"a, b c"`` -> ``["a", "b", "c"]`` (comma- or blank-separated config lists)."""
    return [part for part in re.split(r"[,\s]+", text) if part]


def validate_monitor(section: MonitorConfig, where: Callable[[str], str]) -> None:
    import shlex

    if section.bins < 2:
        raise BadInput(f"{where('bins')}: at least 2 bins, got {section.bins}")
    for key in ("error_threshold", "psi_threshold", "min_interval"):
        if getattr(section, key) < 0:
            raise BadInput(f"{where(key)}: must be >= 0, got {getattr(section, key)}")
    if not 0 < section.min_coverage <= 1:
        raise BadInput(
            f"{where('min_coverage')}: a share above 0 and at most 1, got {section.min_coverage}"
        )
    if section.lookback_days <= 0:
        raise BadInput(f"{where('lookback_days')}: must be > 0, got {section.lookback_days}")
    if not section.key.strip() or not section.target.strip():
        raise BadInput(f"{where('key')}: [monitor] key and target name columns; not empty")
    if section.retrain_unit and section.retrain_command:
        raise BadInput(
            f"{where('retrain_unit')} and {where('retrain_command')}: set one of them, not both"
        )
    if section.retrain_unit and not UNIT_RE.match(section.retrain_unit):
        raise BadInput(
            f"{where('retrain_unit')}: a systemd service unit like "
            f"mlpipe-pipeline@weather-retrain.service, got {section.retrain_unit!r}"
        )
    if section.retrain_command:
        try:
            words = shlex.split(section.retrain_command)
        except ValueError as exc:
            raise BadInput(f"{where('retrain_command')}: not a command line ({exc})") from None
        if not words:
            raise BadInput(f"{where('retrain_command')}: empty command")


def config_path(env: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The config file to read and whether it was asked for explicitly."""
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser(), True
    return DEFAULT_CONFIG_PATH, False


def load_config(path: Path | str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the effective configuration (defaults < TOML file < environment).

    ``path`` overrides ``$MLPIPE_CONFIG``; an explicitly named file must exist.
    Raises :class:`BadInput` naming the file or variable at fault.
    """
    env = os.environ if env is None else env
    explicit = path is not None
    file_path, env_explicit = config_path(env) if path is None else (Path(path), True)
    explicit = explicit or env_explicit
    data: dict[str, Any] = {}
    if file_path.is_file():
        try:
            data = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{file_path}: cannot read the config file: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise BadInput(f"{file_path}: not valid TOML: {exc}") from None
        source = str(file_path)
    elif explicit:
        raise BadInput(
            f"{file_path}: config file not found (named by "
            f"{'$' + ENV_CONFIG if env_explicit else 'the caller'}); create it or unset it"
        )
    else:
        source = "defaults (no " + str(file_path) + ")"
    sections = _section_types()
    unknown = sorted(k for k in data if k not in sections)
    if unknown:
        raise BadInput(
            f"{file_path}: unknown section(s) {', '.join('[' + u + ']' for u in unknown)}; "
            f"known: {', '.join('[' + s + ']' for s in sections)}"
        )
    kwargs: dict[str, object] = {}
    for name, cls in sections.items():
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise BadInput(f"{file_path}: {name} must be a [{name}] table")
        kwargs[name] = _build_section(name, cls, values, file_path, env)
    return Config(**kwargs, source=source)  # type: ignore[arg-type]


def _mask(key: str, value: object) -> object:
    if any(word in key.lower() for word in SECRET_WORDS):
        return "***" if value else ""
    if isinstance(value, str) and "@" in value and "://" in value:
        parts = urlsplit(value)
        if parts.password:
            netloc = f"{parts.username}:***@{parts.hostname}"
            if parts.port:
                netloc += f":{parts.port}"
            return urlunsplit(parts._replace(netloc=netloc))
    return value


def as_dict(config: Config, masked: bool = True) -> dict[str, dict[str, object]]:
    """Sections as plain dicts (secrets masked unless ``masked=False``)."""
    out: dict[str, dict[str, object]] = {}
    for name in _section_types():
        section = getattr(config, name)
        out[name] = {
            f.name: (
                _mask(f.name, getattr(section, f.name)) if masked else getattr(section, f.name)
            )
            for f in dataclasses.fields(section)
        }
    return out


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def render(config: Config) -> str:
    """The effective config as TOML, secrets masked, with its source noted."""
    lines = [f"# effective mlpipe config; file: {config.source}; env: MLPIPE_<SECTION>_<KEY>"]
    for name, values in as_dict(config).items():
        lines.append(f"\n[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"
