"""The Slurm executor on a remote cluster's login node over SSH, and offline jobs.

``login_node`` (``tests/slurm/sshd.py``) is a real sshd on loopback whose sessions
reach the real ``slurm_cluster``; the remote work dir is a directory distinct from
the local staging dir, so everything the job reads was copied there over SFTP.
Host key checks, a wrong key and a silent port are tried against real sockets.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from mlpipe.config import load_config
from mlpipe.errors import BadInput
from mlpipe.slurm.transport import HostKeyError, SshError, SshTransport
from procs import free_port
from slurm.pipelines import first_steps
from slurm.sshd import running_login_node

MLPIPE = str(Path(os.path.abspath(sys.executable)).parent / "mlpipe")
EXAMPLE_RAW = Path(__file__).resolve().parents[2] / "tasks_py" / "examples" / "weather" / "raw"


@pytest.fixture(scope="session")
def login_node(slurm_cluster, tmp_path_factory):
    """A real sshd on loopback whose sessions submit to ``slurm_cluster``."""
    with running_login_node(slurm_cluster, tmp_path_factory) as node:
        yield node


def ssh_config(node, **extra: str):
    env = {
        "MLPIPE_SLURM_HOST": node.host,
        "MLPIPE_SLURM_PORT": str(node.port),
        "MLPIPE_SLURM_USER": node.user,
        "MLPIPE_SLURM_KEY_FILE": str(node.key_file),
        "MLPIPE_SLURM_KNOWN_HOSTS": str(node.known_hosts),
        "MLPIPE_SLURM_REMOTE_WORK_DIR": "/tmp",
        "MLPIPE_SLURM_CONNECT_TIMEOUT": "3",
        **extra,
    }
    return load_config(env=env).slurm


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"MLPIPE_SLURM_HOST": "login1"}, "[slurm] known_hosts (file"),
        (
            {"MLPIPE_SLURM_HOST": "login1", "MLPIPE_SLURM_KNOWN_HOSTS": "/k"},
            "[slurm] key_file (file",
        ),
        (
            {
                "MLPIPE_SLURM_HOST": "login1",
                "MLPIPE_SLURM_KNOWN_HOSTS": "/k",
                "MLPIPE_SLURM_KEY_FILE": "/id",
                "MLPIPE_SLURM_REMOTE_WORK_DIR": "scratch",
            },
            "an absolute path on the cluster",
        ),
        ({"MLPIPE_SLURM_REMOTE_WORK_DIR": "/scratch"}, "set only with host"),
        ({"MLPIPE_SLURM_PORT": "0"}, "a TCP port"),
        ({"MLPIPE_SLURM_JUMP_HOST": "u@:x", "MLPIPE_SLURM_HOST": "h"}, "[user@]host[:port]"),
        ({"MLPIPE_SLURM_OFFLINE": "maybe"}, "MLPIPE_SLURM_OFFLINE"),
    ],
)
def test_bad_ssh_settings_name_the_key(env, message):
    with pytest.raises(BadInput) as err:
        load_config(env=env)
    assert message in str(err.value)


def test_ssh_settings_from_the_environment():
    cfg = load_config(
        env={
            "MLPIPE_SLURM_HOST": "login1.hpc.example",
            "MLPIPE_SLURM_PORT": "2222",
            "MLPIPE_SLURM_KEY_FILE": "/id",
            "MLPIPE_SLURM_KNOWN_HOSTS": "/k",
            "MLPIPE_SLURM_JUMP_HOST": "me@gw:2200",
            "MLPIPE_SLURM_REMOTE_WORK_DIR": "/scratch/me",
            "MLPIPE_SLURM_OFFLINE": "yes",
        }
    ).slurm
    assert (cfg.host, cfg.port, cfg.jump_host, cfg.offline) == (
        "login1.hpc.example",
        2222,
        "me@gw:2200",
        True,
    )


def test_an_unknown_host_key_is_refused_and_never_added(login_node, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    t = SshTransport(ssh_config(login_node, MLPIPE_SLURM_KNOWN_HOSTS=str(known)))
    with pytest.raises(HostKeyError) as err:
        t.is_dir("/tmp")
    text = str(err.value)
    assert f"[127.0.0.1]:{login_node.port}" in text and str(known) in text
    assert f"ssh-keyscan -p {login_node.port} 127.0.0.1 >> {known}" in text
    assert known.read_text() == ""  # nothing was added


def test_a_changed_host_key_is_refused(login_node, tmp_path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True
    )
    kind, key = (tmp_path / "other.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{login_node.port} {kind} {key}\n")
    t = SshTransport(ssh_config(login_node, MLPIPE_SLURM_KNOWN_HOSTS=str(known)))
    with pytest.raises(HostKeyError, match="host key CHANGED") as err:
        t.is_dir("/tmp")
    assert str(known) in str(err.value)


def test_a_jump_host_is_used_and_its_key_checked(login_node, tmp_path):
    jump = f"{login_node.user}@{login_node.host}:{login_node.port}"  # jumps through itself
    before = login_node.log.count("direct-tcpip")
    t = SshTransport(ssh_config(login_node, MLPIPE_SLURM_JUMP_HOST=jump))
    try:
        assert t.run(["echo", "via the jump host"], 10).stdout == "via the jump host\n"
    finally:
        t.close()
    assert login_node.log.count("direct-tcpip") > before  # the login node was reached through it
    known = tmp_path / "known_hosts"
    known.write_text("")
    t = SshTransport(
        ssh_config(login_node, MLPIPE_SLURM_JUMP_HOST=jump, MLPIPE_SLURM_KNOWN_HOSTS=str(known))
    )
    with pytest.raises(HostKeyError, match="ssh-keyscan"):
        t.run(["true"], 10)


def test_a_wrong_key_is_an_authentication_error(login_node, tmp_path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "stranger")],
        check=True,
    )
    t = SshTransport(ssh_config(login_node, MLPIPE_SLURM_KEY_FILE=str(tmp_path / "stranger")))
    with pytest.raises(SshError, match="authentication with \\[slurm\\] key_file"):
        t.run(["true"], 10)


def test_unreachable_or_silent_hosts_fail_within_the_connect_timeout(login_node):
    closed = free_port()
    t = SshTransport(ssh_config(login_node, MLPIPE_SLURM_PORT=str(closed)))
    with pytest.raises(SshError, match="cannot connect"):
        t.run(["true"], 10)
    with socket.socket() as silent:  # accepts TCP connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        port = silent.getsockname()[1]
        t = SshTransport(ssh_config(login_node, MLPIPE_SLURM_PORT=str(port)))
        start = time.monotonic()
        with pytest.raises(SshError):
            t.is_dir("/tmp")
        assert time.monotonic() - start < 15  # connect_timeout 3 s, not a hang


def _pipeline(tmp_path: Path, tag: str, alpha: float) -> Path:
    """The example's first steps (one year of data), training as the last."""
    doc = {
        "name": f"p-off-{tag}",
        "experiment": f"pipe-off-{tag}",
        "outputs": ["trained"],
        "tasks": {
            **first_steps(),
            "train": {
                "task": "train",
                "inputs": {"data": "data"},
                "params": {"alpha": alpha},
                "outputs": {"model": "trained"},
            },
        },
    }
    path = tmp_path / "pipe" / "pipeline.yaml"
    path.parent.mkdir(exist_ok=True)
    if not (path.parent / "raw").exists():
        shutil.copytree(EXAMPLE_RAW, path.parent / "raw")
    path.write_text(yaml.safe_dump(doc))
    return path


def _pipeline_run(path: Path, executor: str, env: dict[str, str]) -> tuple[dict, str]:
    proc = subprocess.run(
        [MLPIPE, "pipeline", "run", str(path), "--executor", executor, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout), proc.stderr


def test_offline_training_over_ssh_uploads_the_run_and_model_and_reruns_nothing(
    login_node, slurm_cluster, task_env, tmp_path
):
    """A pipeline's changed train step on the cluster over SSH; the job cannot reach
    MLflow or NGAS; its unchanged producers are not submitted."""
    tag = task_env["MLPIPE_PIPELINE_DATA_PREFIX"].rsplit("/", 1)[1]
    name = task_env["MLPIPE_MODEL_NAME"]
    # here first: load, preprocess and version 1 of the model on the real servers
    first, _ = _pipeline_run(_pipeline(tmp_path, tag, 0.0001), "local", dict(os.environ))
    assert first["steps"]["train"]["outputs"] == {"model": f"models:/{name}/1"}

    local, remote = tmp_path / "local", tmp_path / "remote"
    local.mkdir()
    remote.mkdir()
    proxy = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    probe = tmp_path / "probe.txt"
    # the nodes' settings (as a site's credentials.env): the real servers, behind a proxy
    # that does not exist, so any HTTP request from the job fails; the job checks it first
    lines = [f"{k}={v}" for k, v in task_env.items()]
    lines += [f"{k}={proxy}" for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")]
    lines += ["NO_PROXY=", "no_proxy="]
    check = (
        "import sys, urllib.request\n"
        "try:\n"
        f"    urllib.request.urlopen({task_env['MLPIPE_MLFLOW_TRACKING_URI']!r}, timeout=5)\n"
        "    print('reachable')\n"
        "except OSError as exc:\n"
        "    print('blocked', exc)\n"
    )
    (tmp_path / "check.py").write_text(check)
    lines.append(f"{sys.executable} {tmp_path / 'check.py'} > {probe} 2>&1")
    env_file = tmp_path / "node.env"
    env_file.write_text("\n".join(lines) + "\n")
    env = _remote_env(
        login_node,
        slurm_cluster,
        tmp_path,
        MLPIPE_SLURM_WORK_DIR=str(local),
        MLPIPE_SLURM_OFFLINE="true",
        MLPIPE_SLURM_ENV_FILE=str(env_file),
        MLPIPE_SLURM_SBATCH_EXTRA="--export=NONE",
    )
    path = _pipeline(tmp_path, tag, 0.001)  # train changed, its producers did not
    summary, stderr = _pipeline_run(path, "slurm", env)
    assert summary["counts"] == {"ran": 1, "skipped": 2, "failed": 0, "blocked": 0}, stderr
    assert probe.read_text().startswith("blocked"), probe.read_text()
    assert "train: offline: 1 input file(s) staged to" in stderr
    assert "load: unchanged, not submitted" in stderr
    train = summary["steps"]["train"]
    assert train["outputs"] == {"model": f"models:/{name}/2"}  # the job's registry said 1

    mlflow.set_tracking_uri(task_env["MLPIPE_MLFLOW_TRACKING_URI"])  # runs:/ and models:/
    client = mlflow.MlflowClient()
    run_ = client.get_run(train["run_id"])
    job_id = run_.data.tags["mlpipe.slurm.job_id"]
    assert f"train: submitted as Slurm job {job_id}" in stderr
    assert run_.data.tags["mlpipe.slurm.state"] == "COMPLETED"
    assert run_.data.tags["mlpipe.executor"] == "slurm"
    assert run_.info.status == "FINISHED"
    assert run_.data.params["alpha"] == "0.001"
    assert {"rmse", "rows_train", "rows_heldout"} <= set(run_.data.metrics)
    assert run_.data.tags["mlpipe.model_version"] == "2"
    assert run_.data.tags["mlpipe.slurm.offline_run"] != run_.info.run_id  # the node's own
    artifacts = {a.path for a in client.list_artifacts(run_.info.run_id)}
    assert {"model", "eval", "mlpipe", "data.json"} <= artifacts
    version = client.get_model_version(name, "2")
    assert version.run_id == run_.info.run_id
    assert version.tags["mlpipe.run_id"] == run_.info.run_id
    outputs = mlflow.artifacts.load_dict(f"runs:/{run_.info.run_id}/mlpipe/outputs.json")
    assert outputs == {"model": f"models:/{name}/2"}
    # the registered model loads from the real server (its files are on NGAS)
    assert mlflow.pyfunc.load_model(f"models:/{name}/2").metadata.signature is not None
    # the job wrote its run to its own files on the cluster
    run_dirs = list(remote.iterdir())
    assert [(d / "train.offline" / "out" / "mlflow.db").is_file() for d in run_dirs] == [True]

    # the uploaded run is what the next run finds: nothing is submitted
    again, stderr = _pipeline_run(path, "slurm", env)
    assert again["counts"]["skipped"] == 3, stderr
    assert "submitted as Slurm job" not in stderr


def _remote_env(node, slurm_cluster, tmp_path, **extra: str) -> dict[str, str]:
    remote = tmp_path / "remote"
    remote.mkdir(exist_ok=True)
    return {
        **{k: v for k, v in os.environ.items() if k != "SLURM_CONF"},
        "MLPIPE_SLURM_HOST": node.host,
        "MLPIPE_SLURM_PORT": str(node.port),
        "MLPIPE_SLURM_USER": node.user,
        "MLPIPE_SLURM_KEY_FILE": str(node.key_file),
        "MLPIPE_SLURM_KNOWN_HOSTS": str(node.known_hosts),
        "MLPIPE_SLURM_REMOTE_WORK_DIR": str(remote),
        "MLPIPE_SLURM_PYTHON": sys.executable,
        "MLPIPE_SLURM_PARTITION": slurm_cluster.partition,
        "MLPIPE_SLURM_POLL_INTERVAL": "0.5",
        "MLPIPE_SLURM_POLL_MAX": "2",
        "PATH": str(Path(sys.executable).parent),  # no Slurm command here
        **extra,
    }


def test_a_failing_remote_job_reports_its_state_and_log_tail_over_ssh(
    login_node, slurm_cluster, task_env, tmp_path
):
    # no `module` command on the "cluster": the job fails at once; its log is on the remote side
    proc = subprocess.run(
        [MLPIPE, "load-raw", str(tmp_path / "x.csv"), "--via", "slurm"],
        capture_output=True,
        text=True,
        env=_remote_env(login_node, slurm_cluster, tmp_path, MLPIPE_SLURM_MODULES="python/3.11"),
        check=False,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    # (the exit code only when sacct, not squeue, saw the end first)
    assert re.search(r"step load-raw: Slurm job \d+ failed", proc.stderr), proc.stderr
    assert "module: command not found" in proc.stderr  # read back over SFTP
    (run_dir,) = (tmp_path / "remote").iterdir()
    assert (run_dir / "load-raw.sbatch").is_file()  # staged over SFTP to the remote work dir


def test_offline_refuses_a_task_it_cannot_run_without_the_network(
    login_node, slurm_cluster, task_env, tmp_path
):
    proc = subprocess.run(
        [MLPIPE, "load-raw", str(tmp_path / "x.csv"), "--via", "slurm"],
        capture_output=True,
        text=True,
        env=_remote_env(login_node, slurm_cluster, tmp_path, MLPIPE_SLURM_OFFLINE="true"),
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "task load-raw cannot run offline yet" in proc.stderr
    assert "submitted as Slurm job" not in proc.stderr
