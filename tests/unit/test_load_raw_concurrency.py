"""load-raw stores ``[ngas] concurrency`` files at once (issue 16 items 4 and 7): never more
requests in flight than that, retried through NGAS's MaxSimReqs rejections (the bare 503 of
``qarchive_parallel_overload_503``) with 0 failed and 0 lost files, the outputs in the order
of the sources, and the first file that cannot be stored stopping the batch.

The NGAS double of each test is its own (its MaxSimReqs and counters are the test's); MLflow
is the session's real server.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpipe.errors import BadInput
from mlpipe.storage import NgasClient
from mlpipe.storage.errors import NgasError
from mlpipe.tasks.context import TaskContext
from mlpipe.tasks.registry import run_task
from ngas_double import NgasDouble

FILES = 24


@pytest.fixture
def raw_files(weather_raw: Path, tmp_path: Path) -> list[Path]:
    """FILES small, distinct raw CSVs of the weather example (10 days each)."""
    lines = (weather_raw / "seattle-2012.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    out = tmp_path / "raw"
    out.mkdir()
    paths = []
    for i in range(FILES):
        path = out / f"part-{i:02d}.csv"
        path.write_text("\n".join([header, *rows[i * 10 : i * 10 + 10]]) + "\n")
        paths.append(path)
    return paths


@pytest.fixture
def double(tmp_path: Path, task_env: dict[str, str], monkeypatch: pytest.MonkeyPatch):
    """A fresh NGAS double the tasks use (task_env's MLflow and names otherwise)."""

    def start(**kwargs: object) -> NgasDouble:
        # mime_types None: every type has a Stream (as text/csv has on the platform's NGAS)
        d = NgasDouble(tmp_path / "ngas", mime_types=None, **kwargs).start()  # type: ignore[arg-type]
        started.append(d)
        monkeypatch.setenv("MLPIPE_NGAS_URL", d.url)
        return d

    started: list[NgasDouble] = []
    yield start
    for d in started:
        d.stop()


def _load(paths: list[Path]) -> Iterator[dict]:
    result = run_task(
        "load-raw", {}, {"sources": [str(p) for p in paths]}, ctx=TaskContext.from_config()
    )
    return result.outputs["raw"]


def _same_bytes(d: NgasDouble, outputs: list[dict], paths: list[Path], tmp_path: Path) -> None:
    client = NgasClient(d.url)
    for item, path in zip(outputs, paths, strict=True):
        assert item["id"].endswith("/" + path.name)  # the order of the sources
        back = tmp_path / "back" / path.name
        back.parent.mkdir(exist_ok=True)
        client.retrieve(item["id"], back)
        assert back.read_bytes() == path.read_bytes()
        assert zlib.crc32(back.read_bytes()) == zlib.crc32(path.read_bytes())


def test_files_are_stored_concurrently_never_beyond_the_cap(
    double, raw_files, monkeypatch, tmp_path
):
    monkeypatch.setenv("MLPIPE_NGAS_CONCURRENCY", "4")
    d = double()
    d.faults.slow_archive = 0.2  # every upload takes a while: they overlap if sent at once
    outputs = _load(raw_files)
    assert 2 <= d.max_in_flight <= 4, d.max_in_flight
    assert len(outputs) == FILES and d.count("QARCHIVE") == FILES
    _same_bytes(d, outputs, raw_files, tmp_path)

    # a second load finds every file already there: nothing archived again
    d.faults.slow_archive = 0.0
    again = _load(raw_files)
    assert [o["id"] for o in again] == [o["id"] for o in outputs]
    assert d.count("QARCHIVE") == FILES


def test_concurrency_one_sends_one_request_at_a_time(double, raw_files, monkeypatch, tmp_path):
    monkeypatch.setenv("MLPIPE_NGAS_CONCURRENCY", "1")
    d = double()
    d.faults.slow_archive = 0.05
    outputs = _load(raw_files[:6])
    assert d.max_in_flight == 1
    _same_bytes(d, outputs, raw_files[:6], tmp_path)


def test_maxsimreqs_rejections_are_retried_none_failed_none_lost(
    double, raw_files, monkeypatch, tmp_path
):
    """Eight writers against MaxSimReqs=3: NGAS rejects what is beyond it with a bare 503;
    every file still ends up stored once, with its bytes."""
    monkeypatch.setenv("MLPIPE_NGAS_CONCURRENCY", "8")
    monkeypatch.setenv("MLPIPE_NGAS_RETRIES", "8")
    d = double(max_sim_reqs=3)
    d.faults.slow_archive = 0.1
    outputs = _load(raw_files)
    assert d.rejected_overload > 0  # the limit was hit ...
    assert d.max_in_flight <= 3
    assert len(outputs) == FILES  # ... and nothing failed or went missing
    stored = [f.file_id for f in NgasClient(d.url).list("")]
    assert sorted(stored) == sorted(o["id"] for o in outputs)  # each once: no extra versions
    _same_bytes(d, outputs, raw_files, tmp_path)


def test_the_first_file_that_cannot_be_stored_stops_the_batch(double, raw_files, monkeypatch):
    monkeypatch.setenv("MLPIPE_NGAS_CONCURRENCY", "4")
    d = double()
    d.faults.fail_archive_after = 5  # then 503 to every QARCHIVE, retries included
    with pytest.raises(NgasError):
        _load(raw_files)
    attempted = {p["file_id"] for c, p in d.request_log if c == "QARCHIVE"}
    assert 5 <= len(attempted) < FILES  # the files not started were never sent
    d.faults.clear()
    outputs = _load(raw_files)  # a run again stores the rest
    assert len(outputs) == FILES


@pytest.mark.parametrize("value", ["0", "65"])
def test_a_concurrency_out_of_range_is_bad_input_naming_the_setting(task_env, monkeypatch, value):
    monkeypatch.setenv("MLPIPE_NGAS_CONCURRENCY", value)
    with pytest.raises(BadInput, match=r"\[ngas\] concurrency .*MLPIPE_NGAS_CONCURRENCY.*1 to 64"):
        TaskContext.from_config()
