"""ReadCache: hits, staleness per connection mode, LRU, concurrency, no poisoning."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from mlpipe.storage import BadEmptyMarker, CacheMiss, ChecksumMismatch, NgasClient, ReadCache
from mlpipe.storage.ngas import EMPTY_MARKER, EMPTY_MIME
from procs import wait_until


@pytest.fixture
def make_cache(tmp_path, ngas_server):
    def make(mode: str = "good", max_size: int = 1 << 30, name: str = "cache") -> ReadCache:
        return ReadCache(
            tmp_path / name,
            default_url=ngas_server.url,
            max_size=max_size,
            mode=mode,
            client_options={"retries": 1, "backoff": 0.01, "timeout": 30},
        )

    return make


def _put(client: NgasClient, tmp_path: Path, fid: str, data: bytes) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    client.archive(src, fid)


def test_miss_then_hit_no_download(make_cache, ngas_client, ngas_prefix, tmp_path):
    fid = f"{ngas_prefix}/data.bin"
    data = os.urandom(500_000)
    _put(ngas_client, tmp_path, fid, data)
    cache = make_cache("good")
    assert cache.fetch(fid).read_bytes() == data
    sent = cache.network_requests
    assert cache.fetch(fid).read_bytes() == data
    assert cache.network_requests - sent == 1  # the one small staleness check, no RETRIEVE
    st = cache.stats()
    assert (st.hits, st.misses, st.entries, st.size) == (1, 1, 1, 500_000)


def test_explicit_version_is_served_without_any_request(
    make_cache, ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/v.bin"
    _put(ngas_client, tmp_path, fid, b"one")
    cache = make_cache("good")
    cache.fetch(fid, version=1)
    sent = cache.network_requests
    assert cache.fetch(fid, version=1).read_bytes() == b"one"
    assert cache.network_requests == sent


def test_stale_good_redownloads_bad_serves_cached_offline_never_touches_network(
    make_cache, ngas_client, ngas_prefix, tmp_path, caplog
):
    fid = f"{ngas_prefix}/stale.bin"
    _put(ngas_client, tmp_path, fid, b"old contents")
    make_cache("good").fetch(fid)
    _put(ngas_client, tmp_path, fid, b"new contents!")  # version 2 on the server

    bad = make_cache("bad")
    with caplog.at_level("WARNING"):
        assert bad.fetch(fid).read_bytes() == b"old contents"
    assert "may be stale" in caplog.text
    assert bad.network_requests == 0

    offline = make_cache("offline")
    assert offline.fetch(fid).read_bytes() == b"old contents"
    assert offline.network_requests == 0
    with pytest.raises(CacheMiss, match="offline"):
        offline.fetch(f"{ngas_prefix}/never-fetched")
    assert offline.network_requests == 0

    good = make_cache("good")
    assert good.fetch(fid).read_bytes() == b"new contents!"
    assert good.stats().counters["downloads"] == 2


def test_offline_mode_with_unreachable_server(tmp_path):
    cache = ReadCache(tmp_path / "c", default_url="http://127.0.0.1:9", mode="offline")
    with pytest.raises(CacheMiss):
        cache.fetch("x/y")
    assert cache.network_requests == 0


def test_auto_mode_probes(make_cache):
    cache = make_cache("auto")
    assert cache.mode() == "good"
    cache.probe_max_latency_ms = 0.0
    cache._probes.clear()
    assert cache.mode() == "bad"
    down = ReadCache(cache.dir, default_url="http://127.0.0.1:9", mode="auto")
    assert down.mode() == "offline"


def test_lru_eviction_keeps_under_max_size(make_cache, ngas_client, ngas_prefix, tmp_path):
    cache = make_cache("good", max_size=250_000)
    ids = [f"{ngas_prefix}/lru/{i}" for i in range(3)]
    for fid in ids:
        _put(ngas_client, tmp_path, fid, os.urandom(100_000))
    cache.fetch(ids[0])
    cache.fetch(ids[1])
    cache.fetch(ids[0])  # 0 is now more recently used than 1
    cache.fetch(ids[2])  # needs room: evicts 1
    cached = {e.file_id for e in cache.entries()}
    assert cached == {ids[0], ids[2]}
    assert cache.stats().size <= 250_000
    assert cache.prune(everything=True) == (2, 200_000)
    assert cache.stats().entries == 0


def test_corrupt_download_does_not_poison_cache(
    make_cache, ngas_faults, ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/poison.bin"
    data = os.urandom(1_500_000)
    _put(ngas_client, tmp_path, fid, data)
    cache = make_cache("good")
    ngas_faults.faults.corrupt_retrieve = 1
    with pytest.raises(ChecksumMismatch):
        cache.fetch(fid)
    assert cache.entries() == []
    assert [p for p in (cache.dir / "objects").rglob("*") if p.is_file()] == []
    assert cache.fetch(fid).read_bytes() == data


def test_two_processes_download_once(ngas_server, ngas_faults, ngas_client, ngas_prefix, tmp_path):
    """Both processes ask NGAS for the file before either has downloaded it; the second
    must wait for the first (the cache's download lock) instead of downloading again."""
    fid = f"{ngas_prefix}/shared.bin"
    data = os.urandom(8 * 1024 * 1024)
    _put(ngas_client, tmp_path, fid, data)
    script = (
        "import sys; from mlpipe.storage import ReadCache;"
        "c = ReadCache(sys.argv[1], default_url=sys.argv[2], mode='good');"
        "print(c.fetch(sys.argv[3]))"
    )

    def asked(command: str) -> int:  # requests of both processes about this file
        with ngas_faults.lock:
            log = list(ngas_faults.request_log)
        return sum(c == command and fid in p.get("like", p.get("file_id", "")) for c, p in log)

    # No download can finish before both processes have looked the file up, and the
    # first one then takes a second: a process that does not wait for it downloads too.
    release = threading.Event()
    ngas_faults.faults.hold_retrieve = release
    ngas_faults.faults.slow_retrieve = 1.0
    cmd = [sys.executable, "-c", script, str(tmp_path / "shared-cache"), ngas_server.url, fid]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        wait_until(lambda: asked("QUERY") >= 2, "both processes asking NGAS for the file")
    finally:
        release.set()
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1] and Path(outs[0]).read_bytes() == data
    assert asked("RETRIEVE") == 1


def test_copy_to_and_uri_targets(make_cache, ngas_server, ngas_client, ngas_prefix, tmp_path):
    fid = f"{ngas_prefix}/uri.bin"
    _put(ngas_client, tmp_path, fid, b"via uri")
    cache = make_cache("good")
    out = cache.copy_to(ngas_server.ngas_uri(fid), tmp_path / "o" / "x.bin")
    assert out.read_bytes() == b"via uri"
    out.write_bytes(b"user edits their copy")
    assert cache.fetch(fid).read_bytes() == b"via uri"


def test_empty_file_cached_as_a_size_0_entry(make_cache, ngas_client, ngas_prefix, tmp_path):
    """An empty file (an empty-file marker in NGAS) is cached, served and checked as 0 bytes."""
    fid = f"{ngas_prefix}/pkg/__init__.py"
    _put(ngas_client, tmp_path, fid, b"")
    cache = make_cache("good")
    path = cache.fetch(fid)
    assert path.read_bytes() == b""
    [entry] = cache.entries()
    assert (entry.file_id, entry.size, entry.checksum) == (fid, 0, "0")
    sent = cache.network_requests
    assert cache.fetch(fid) == path  # a hit: the staleness QUERY only, no RETRIEVE
    assert cache.network_requests - sent == 1
    st = cache.stats()
    assert (st.hits, st.misses, st.entries, st.size) == (1, 1, 1, 0)
    out = cache.copy_to(fid, tmp_path / "copy" / "__init__.py")
    assert out.read_bytes() == b""
    assert make_cache("offline").fetch(fid).read_bytes() == b""  # same directory, no network
    # a cached empty file that gained bytes is dropped and fetched again, not served
    path.chmod(0o644)
    path.write_bytes(b"junk")
    assert cache.fetch(fid).read_bytes() == b""
    # a newer, non-empty version replaces it
    _put(ngas_client, tmp_path, fid, b"x = 1\n")
    assert cache.fetch(fid).read_bytes() == b"x = 1\n"
    assert cache.fetch(fid, version=1).read_bytes() == b""


def test_damaged_marker_is_never_cached_as_empty(make_cache, ngas_server, ngas_prefix):
    fid = f"{ngas_prefix}/damaged"
    r = requests.post(
        f"{ngas_server.url}/QARCHIVE",
        params={"filename": fid, "file_id": fid, "mime_type": EMPTY_MIME},
        data=EMPTY_MARKER[:-1],
        timeout=10,
    )
    assert r.status_code == 200, r.text
    cache = make_cache("good")
    with pytest.raises(BadEmptyMarker, match="not mlpipe's empty-file marker"):
        cache.fetch(fid)
    assert cache.entries() == []
    assert [p for p in (cache.dir / "objects").rglob("*") if p.is_file()] == []


def test_copy_to_a_miss_writes_cache_and_copy_in_one_download(
    make_cache, ngas_client, ngas_prefix, tmp_path
):
    """A miss: one RETRIEVE fills both; the copy is private (its own inode, writable)."""
    fid = f"{ngas_prefix}/copy.bin"
    data = os.urandom(3 * 1024 * 1024 + 17)
    _put(ngas_client, tmp_path, fid, data)
    cache = make_cache("good")
    dest = tmp_path / "out" / "copy.bin"
    sent = cache.network_requests
    cache.copy_to(fid, dest)
    assert cache.network_requests - sent == 2  # the QUERY and one RETRIEVE
    obj = cache.fetch(fid)
    assert dest.read_bytes() == data == obj.read_bytes()
    assert dest.stat().st_ino != obj.stat().st_ino and os.access(dest, os.W_OK)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["copy.bin"]  # no .part left
    dest.write_bytes(b"mine")  # the copy is the caller's: the cache is untouched
    again = tmp_path / "again.bin"
    cache.copy_to(fid, again)  # a hit: copied from the cache
    assert again.read_bytes() == data


def test_second_copy_that_cannot_be_written_leaves_the_download_intact(
    ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/second.bin"
    data = os.urandom(2 * 1024 * 1024)
    _put(ngas_client, tmp_path, fid, data)
    blocked = tmp_path / "no-such-dir" / "copy.part"
    ngas_client.retrieve(fid, tmp_path / "dl", also=blocked)
    assert (tmp_path / "dl").read_bytes() == data and not blocked.exists()


def test_corrupt_download_leaves_no_second_copy(ngas_faults, ngas_client, ngas_prefix, tmp_path):
    fid = f"{ngas_prefix}/corrupt-second.bin"
    _put(ngas_client, tmp_path, fid, os.urandom(2 * 1024 * 1024))
    ngas_faults.faults.corrupt_retrieve = 1
    second = tmp_path / "second.part"
    with pytest.raises(ChecksumMismatch):
        ngas_client.retrieve(fid, tmp_path / "dl", also=second)
    assert not second.exists() and not (tmp_path / "dl").exists()


def test_truncated_download_restarts_the_second_copy(
    ngas_faults, ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/trunc-second.bin"
    data = os.urandom(2 * 1024 * 1024)
    _put(ngas_client, tmp_path, fid, data)
    ngas_faults.faults.truncate_retrieve = 1
    second = tmp_path / "second.part"
    ngas_client.retrieve(fid, tmp_path / "dl", also=second)
    assert second.read_bytes() == data == (tmp_path / "dl").read_bytes()
