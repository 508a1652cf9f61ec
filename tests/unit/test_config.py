"""mlpipe.config: defaults < TOML file < MLPIPE_<SECTION>_<KEY>, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlpipe import cli
from mlpipe.config import load_config, parse_size, render
from mlpipe.errors import BadInput


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mlpipe.toml"
    path.write_text(text)
    return path


def test_defaults_file_and_env_precedence(tmp_path):
    path = _write(
        tmp_path, '[ngas]\nurl = "http://ngas:7777"\nretries = 2\n[cache]\nmax_size = "2G"\n'
    )
    cfg = load_config(env={"MLPIPE_CONFIG": str(path), "MLPIPE_NGAS_RETRIES": "7"})
    assert cfg.ngas.url == "http://ngas:7777"
    assert cfg.ngas.retries == 7
    assert cfg.cache.max_size == 2 * 1024**3
    assert cfg.cache.mode == "auto" and cfg.ngas.timeout == 60.0
    assert cfg.source == str(path)


def test_missing_default_file_is_fine_missing_named_file_is_not(tmp_path):
    cfg = load_config(env={})  # /etc/mlpipe/mlpipe.toml does not exist here
    assert cfg.ngas.url.startswith("http://")
    with pytest.raises(BadInput, match="nope.toml.*MLPIPE_CONFIG"):
        load_config(env={"MLPIPE_CONFIG": str(tmp_path / "nope.toml")})


@pytest.mark.parametrize(
    ("text", "env", "match"),
    [
        ("[ngas\n", {}, "not valid TOML"),
        ("[ngass]\n", {}, r"unknown section.*\[ngass\]"),
        ("[ngas]\nurll = 1\n", {}, "unknown key.*urll"),
        ("[ngas]\nretries = 'many'\n", {}, r"\[ngas\] retries: expected int"),
        ("", {"MLPIPE_CACHE_MODE": "fast"}, "MLPIPE_CACHE_MODE.*auto, good, bad, offline"),
        ("", {"MLPIPE_NGAS_TIMEOUT": "soon"}, "environment variable MLPIPE_NGAS_TIMEOUT"),
        ("", {"MLPIPE_NGAS_URL": "ngas-host"}, "must look like http://host:7777"),
        ("[cache]\nmax_size = '10 parsecs'\n", {}, "expected a size"),
    ],
)
def test_errors_name_file_or_variable(tmp_path, text, env, match):
    path = _write(tmp_path, text)
    with pytest.raises(BadInput, match=match) as info:
        load_config(env={"MLPIPE_CONFIG": str(path), **env})
    assert str(path) in str(info.value) or any(k in str(info.value) for k in env)


def test_parse_size():
    assert parse_size("512M", "x") == 512 * 1024**2
    assert parse_size("1.5GiB", "x") == int(1.5 * 1024**3)
    assert parse_size(42, "x") == 42


def test_render_masks_secrets(tmp_path):
    path = _write(
        tmp_path,
        '[mlflow]\ntracking_token = "s3cr3t"\ntracking_uri = "http://u:pw@mlflow:5000"\n',
    )
    text = render(load_config(env={"MLPIPE_CONFIG": str(path)}))
    assert "s3cr3t" not in text and ":pw@" not in text
    assert 'tracking_token = "***"' in text and "u:***@mlflow:5000" in text


def test_cli_config_show(tmp_path, monkeypatch, capsys):
    path = _write(tmp_path, '[ngas]\nurl = "http://archive:7777"\n')
    monkeypatch.setenv("MLPIPE_CONFIG", str(path))
    assert cli.main(["config", "show"]) == 0
    assert 'url = "http://archive:7777"' in capsys.readouterr().out
    monkeypatch.setenv("MLPIPE_CACHE_MODE", "sometimes")
    assert cli.main(["config", "show"]) == 2
    assert "MLPIPE_CACHE_MODE" in capsys.readouterr().err
