"""Shared pytest fixtures: an NGAS server and real MLflow tracking servers.

NGAS
    ``ngas_server`` (session): an :class:`NgasServer` with ``.url``. By default
    the protocol double in ``tests/ngas_double`` (``.double`` gives the fault
    hooks). With ``NGAS_SOURCE=<NGAS source tree or git repo/URL>`` a real NGAS
    is built in a temporary venv once per session (needs Debian ``libdb-dev`` and
    ``sqlite3``), started on 127.0.0.1 and reached through ``tests/ngas_gate.py``'s
    gate, which forwards every request unchanged unless a fault is set.
    ``ngas_faults``: the fault hooks (``faults``, ``request_log``, ``count``,
    ``staging_files``) of either, cleared after the test. ``own_ngas``: an NGAS of
    the test alone, which it may stop. ``ngas_double``: the double itself, for the
    double's own tests (skips against real NGAS).
    ``ngas_client``: an ``NgasClient`` on it with fast retries.
    ``ngas_prefix``: a unique id prefix per test (tests never need a reset).

MLflow
    ``mlflow_server_factory`` (session): ``start(name, *server_args, env=None,
    store=None)`` runs a REAL ``mlflow server`` on 127.0.0.1 (free port, sqlite
    backend ``mlflow.db`` in a temp dir, or in ``store`` to share one database
    between servers; readiness by polling ``/health``) and returns an
    :class:`MlflowServer` with ``.url`` and ``.stop()``; stopped at session end.
    Ready-made, session-scoped:
    ``mlflow_server`` (MLflow's default proxied local artifact store),
    ``mlflow_server_ngas_proxied`` (``--artifacts-destination ngas://...``),
    ``mlflow_server_ngas_client`` (``--default-artifact-root ngas://...
    --no-serve-artifacts``).

Every test process and server sees an isolated mlpipe config: ``MLPIPE_CONFIG``
is an empty temp file, ``MLPIPE_CACHE_DIR`` a temp dir, ``MLPIPE_CACHE_MODE=good``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from ngas_double import NgasDouble  # noqa: E402
from ngas_double.server import Faults  # noqa: E402
from ngas_gate import NgasGate  # noqa: E402
from ngas_real import BuiltNgas, RealNgasError, build_real_ngas  # noqa: E402
from procs import free_port, stop_process, wait_until  # noqa: E402
from slurm.cluster import slurm_cluster  # noqa: E402,F401 (session: a real Slurm on loopback)

# The Ctrl-C tests send SIGINT to mlpipe (in this process and in children). A shell
# starts a background job (`make test &`, nohup, an `&` in a script) with SIGINT
# ignored, which Python then leaves ignored and every child inherits: the tests
# would hang instead of testing the cancellation. Restore the usual handling.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# `make test-unit` runs pytest-xdist workers (Makefile UNIT_JOBS). Tests are handed
# out one at a time, except that every test of these files goes to one worker: one real
# Slurm per host (munged's socket is host-wide), started once. (xdist's own
# `--dist loadgroup` does not group under pytest 9: it renames item._nodeid, which
# pytest 9 no longer reads.) Handing out whole files, so that each file's
# module-scoped servers start once, was slower: 745 s against 590 s on two cores
# (the suite is CPU-bound, and the long files then finish one after another).
ONE_WORKER = {
    "tests/unit/test_slurm_executor.py": "slurm",
    "tests/unit/test_slurm_remote.py": "slurm",
    # its last test compares the permissions the others used with Terraform's role
    "tests/unit/test_gcs_artifacts.py": "gcs",
}


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class _Scheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return ONE_WORKER.get(nodeid.split("::", 1)[0], nodeid)

    return _Scheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The one-worker tests first: the longest chain starts while the rest spread."""
    items.sort(key=lambda item: item.nodeid.split("::", 1)[0] not in ONE_WORKER)


VENV_BIN = Path(os.path.abspath(sys.executable)).parent
WEATHER_RAW = TESTS.parent / "tasks_py" / "examples" / "weather" / "raw"


# --------------------------------------------------------------------- config
@pytest.fixture(scope="session", autouse=True)
def mlpipe_test_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Isolate every test (and subprocess) from /etc/mlpipe and ~/.cache."""
    base = tmp_path_factory.mktemp("mlpipe-env")
    (base / "mlpipe.toml").write_text("# empty: tests use env overrides\n")
    env = {
        "MLPIPE_CONFIG": str(base / "mlpipe.toml"),
        "MLPIPE_CACHE_DIR": str(base / "cache"),
        "MLPIPE_CACHE_MODE": "good",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# ----------------------------------------------------------------------- NGAS
@dataclass
class NgasServer:
    """A running NGAS (double or real)."""

    url: str
    kind: str  # "double" | "real"
    double: NgasDouble | None = None
    root: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)
    gate: NgasGate | None = None  # real NGAS: the fault gate ``url`` points at

    @property
    def host_port(self) -> str:
        return self.url.split("://", 1)[1]

    def ngas_uri(self, path: str = "") -> str:
        return f"ngas://{self.host_port}/{path.strip('/')}"

    @property
    def faults_target(self) -> NgasDouble | NgasGate:
        target = self.double or self.gate
        assert target is not None
        return target

    @property
    def faults(self) -> Faults:
        return self.faults_target.faults

    def stop(self) -> None:
        if self.double is not None:
            self.double.stop()
        if self.gate is not None:
            self.gate.stop()
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture(scope="session")
def real_ngas_build(tmp_path_factory: pytest.TempPathFactory) -> BuiltNgas | None:
    """NGAS built from $NGAS_SOURCE once per session (None without NGAS_SOURCE)."""
    source = os.environ.get("NGAS_SOURCE")
    if not source:
        return None
    try:
        return build_real_ngas(source, tmp_path_factory.mktemp("ngas-build"))
    except RealNgasError as exc:
        pytest.fail(str(exc))


def start_ngas(build: BuiltNgas | None, tmp: Path) -> NgasServer:
    """A new NGAS in ``tmp``: the double, or real NGAS from ``build`` behind a fault gate."""
    if build is None:
        double = NgasDouble(tmp / "double").start()
        return NgasServer(url=double.url, kind="double", double=double, root=double.root)
    url, root, proc = build.start(tmp)
    gate = NgasGate(url, root=root).start()
    return NgasServer(url=gate.url, kind="real", root=root, process=proc, gate=gate)


@pytest.fixture(scope="session")
def ngas_server(
    real_ngas_build: BuiltNgas | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NgasServer]:
    """The NGAS for this session: the double, or real NGAS built from $NGAS_SOURCE
    (reached through an :class:`NgasGate`, which forwards it unchanged unless a test
    sets a fault)."""
    server = start_ngas(real_ngas_build, tmp_path_factory.mktemp("ngas"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ngas_faults(ngas_server: NgasServer) -> Iterator[NgasDouble | NgasGate]:
    """Fault hooks on the session's NGAS: the double's own, or the gate's in front of
    real NGAS (same ``faults``, ``request_log``, ``count``, ``staging_files``)."""
    target = ngas_server.faults_target
    yield target
    target.faults.clear()


@pytest.fixture
def own_ngas(real_ngas_build: BuiltNgas | None, tmp_path: Path) -> Iterator[NgasServer]:
    """An NGAS of this test alone, which it may stop (``.stop()``): the double, or a real
    NGAS started from the session's build behind a gate of its own."""
    server = start_ngas(real_ngas_build, tmp_path / "own-ngas")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ngas_double(ngas_server: NgasServer) -> Iterator[NgasDouble]:
    """The double itself (tests of the double); skips against real NGAS."""
    if ngas_server.double is None:
        pytest.skip("a test of the NGAS double itself (NGAS_SOURCE is set)")
    yield ngas_server.double
    ngas_server.double.faults.clear()


@pytest.fixture
def ngas_prefix() -> str:
    """A file id prefix unique to this test."""
    return f"t/{uuid.uuid4().hex[:10]}"


@pytest.fixture
def ngas_client(ngas_server: NgasServer):
    from mlpipe.storage import NgasClient

    return NgasClient(ngas_server.url, timeout=30, retries=3, backoff=0.01)


# --------------------------------------------------------------------- MLflow
@dataclass
class MlflowServer:
    url: str
    name: str
    process: subprocess.Popen = field(repr=False)
    workdir: Path = field(repr=False)
    store: Path = field(repr=False)  # the directory of its sqlite database

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="session")
def mlflow_server_factory(
    tmp_path_factory: pytest.TempPathFactory, mlpipe_test_env: dict[str, str]
) -> Iterator[Callable[..., MlflowServer]]:
    """``start(name, *extra_args, env=None, store=None)`` -> a running real ``mlflow server``."""
    started: list[MlflowServer] = []

    def start(
        name: str, *extra: str, env: dict[str, str] | None = None, store: Path | None = None
    ) -> MlflowServer:
        work = tmp_path_factory.mktemp(f"mlflow-{name}")
        store = store or work
        port = free_port()
        log = work / "server.log"
        cmd = [
            str(VENV_BIN / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--workers",
            "1",
            *extra,
        ]
        full_env = {**os.environ, **mlpipe_test_env, **(env or {})}
        full_env["MLPIPE_CACHE_DIR"] = str(work / "server-cache")
        full_env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        proc = subprocess.Popen(
            cmd, cwd=work, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        server = MlflowServer(url=url, name=name, process=proc, workdir=work, store=store)
        started.append(server)
        wait_until(
            lambda: requests.get(f"{url}/health", timeout=5).status_code == 200,
            f"mlflow server {name}",
            proc,
            log=log,
        )
        return server

    yield start
    for server in started:
        stop_process(server.process)


@pytest.fixture(scope="session")
def mlflow_server(mlflow_server_factory, tmp_path_factory) -> MlflowServer:
    """MLflow with its default proxied local artifact store."""
    store = tmp_path_factory.mktemp("mlartifacts")
    return mlflow_server_factory("local", "--artifacts-destination", str(store))


@pytest.fixture(scope="session")
def mlflow_server_ngas_proxied(mlflow_server_factory, ngas_server) -> MlflowServer:
    """MLflow proxying artifacts to NGAS (the plugin runs inside the server)."""
    dest = ngas_server.ngas_uri(f"proxied-{uuid.uuid4().hex[:8]}")
    return mlflow_server_factory("ngas-proxied", "--artifacts-destination", dest)


@pytest.fixture(scope="session")
def mlflow_server_ngas_client(mlflow_server_factory, ngas_server) -> MlflowServer:
    """MLflow telling clients to store artifacts on NGAS themselves."""
    root = ngas_server.ngas_uri(f"client-{uuid.uuid4().hex[:8]}")
    return mlflow_server_factory(
        "ngas-client", "--default-artifact-root", root, "--no-serve-artifacts"
    )


# ------------------------------------------------------- tasks and pipelines
@pytest.fixture(scope="session")
def weather_raw() -> Path:
    """Real observations (seattle-weather, 2012-2015), one raw CSV per year: the committed
    example data ``tasks_py/examples/weather/raw/`` (tests only read it)."""
    raw = WEATHER_RAW
    years = sorted(p.name for p in raw.glob("seattle-*.csv"))
    assert years == [f"seattle-{y}.csv" for y in (2012, 2013, 2014, 2015)], (raw, years)
    return raw


@pytest.fixture
def task_env(
    monkeypatch: pytest.MonkeyPatch, ngas_server, mlflow_server_ngas_proxied, ngas_prefix: str
) -> dict[str, str]:
    """Env (also set in os.environ) pointing the tasks at NGAS and MLflow-on-NGAS.

    Data prefix, experiment and registered model name are unique to the test.
    """
    tag = ngas_prefix.rsplit("/", 1)[-1]
    env = {
        "MLPIPE_NGAS_URL": ngas_server.url,
        "MLPIPE_NGAS_RETRIES": "2",
        "MLPIPE_NGAS_BACKOFF": "0.05",
        "MLPIPE_MLFLOW_TRACKING_URI": mlflow_server_ngas_proxied.url,
        "MLPIPE_PIPELINE_DATA_PREFIX": ngas_prefix,
        "MLPIPE_PIPELINE_EXPERIMENT": f"exp-{tag}",
        "MLPIPE_MODEL_NAME": f"weather-{tag}",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
