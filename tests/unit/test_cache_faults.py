"""ReadCache under faults (issue 11 item 2): unreachable servers, a full disk, leftovers of
killed downloads, damaged cached files, eviction while a reader holds a path, a hung lock
holder, and the ``auto`` probe's figures per server.

The servers are the NGAS double (fault hooks) and doubles started per test (to stop one).
A full disk is a real one: a small tmpfs mounted for the test (needs root, as in CI's
containers; elsewhere those tests skip and say why), so ENOSPC comes from the kernel.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlpipe.storage import CacheMiss, NgasClient, NgasUnavailable, ReadCache
from mlpipe.storage.cache import entry_key
from mlpipe.storage.errors import CacheFull, CacheLockTimeout, NgasAccessDenied
from mlpipe.storage.space import free_bytes
from ngas_double import NgasDouble
from ngas_gate import NgasGate
from procs import stop_process, wait_until

MiB = 1024 * 1024
FAST = {"retries": 3, "backoff": 0.5, "timeout": 30}  # retries would take seconds: counted


def _put(client: NgasClient, tmp_path: Path, fid: str, data: bytes) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    client.archive(src, fid)


def _cache(directory: Path, url: str, mode: str = "good", **kwargs: object) -> ReadCache:
    return ReadCache(directory, default_url=url, mode=mode, client_options=dict(FAST), **kwargs)  # type: ignore[arg-type]


def _retrieves(double: NgasDouble | NgasGate, fid: str) -> int:
    with double.lock:
        return sum(c == "RETRIEVE" and p.get("file_id") == fid for c, p in double.request_log)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs of this test alone: a real filesystem that fills up."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the full-disk tests needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


# ------------------------------------------------------------ unreachable servers
def test_unreachable_ngas_serves_the_cached_copy_with_a_warning(own_ngas, tmp_path, caplog):
    fid = "f/unreachable.bin"
    _put(NgasClient(own_ngas.url), tmp_path, fid, b"cached bytes")
    good = _cache(tmp_path / "c", own_ngas.url)
    assert good.fetch(fid).read_bytes() == b"cached bytes"

    own_ngas.faults.fail_5xx = 1  # a 5xx: an error, not "not found", and not fatal either
    sent = good.network_requests
    with caplog.at_level(logging.WARNING, logger="mlpipe.storage.cache"):
        assert good.fetch(fid).read_bytes() == b"cached bytes"
    assert good.network_requests - sent == 1  # one try, none of the 3 retries
    assert "may be stale" in caplog.text and fid in caplog.text

    own_ngas.stop()
    for mode in ("good", "auto"):
        caplog.clear()
        cache = _cache(tmp_path / "c", own_ngas.url, mode)
        with caplog.at_level(logging.WARNING, logger="mlpipe.storage.cache"):
            assert cache.fetch(fid).read_bytes() == b"cached bytes"
        assert "may be stale" in caplog.text, mode
    assert _cache(tmp_path / "c", own_ngas.url).stats().counters["stale_served"] == 3
    nothing = ReadCache(
        tmp_path / "c", default_url=own_ngas.url, mode="good", client_options={"retries": 0}
    )
    with pytest.raises(NgasUnavailable):  # nothing cached: the failure is reported as such
        nothing.fetch("f/never-cached")


def test_a_refused_login_is_an_error_even_with_a_cached_copy(tmp_path):
    users = {"reader": ("right", None)}
    double = NgasDouble(tmp_path / "auth-ngas", users=users).start()
    try:
        fid = "f/secret.bin"
        right = {**FAST, "username": "reader", "password": "right"}
        _put(NgasClient(double.url, username="reader", password="right"), tmp_path, fid, b"s")
        ReadCache(tmp_path / "c", default_url=double.url, client_options=right).fetch(fid)
        wrong = {**FAST, "username": "reader", "password": "wrong"}
        cache = ReadCache(tmp_path / "c", default_url=double.url, client_options=wrong)
        with pytest.raises(NgasAccessDenied, match="refused"):
            cache.fetch(fid)
    finally:
        double.stop()


# ----------------------------------------------------------------------- disk full
def test_no_space_during_a_download_is_cache_full_and_leaves_nothing(
    small_disk, ngas_server, ngas_faults, ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/big.bin"
    data = os.urandom(3 * MiB)
    _put(ngas_client, tmp_path, fid, data)
    cache = ReadCache(small_disk / "cache", default_url=ngas_server.url, mode="good")
    ngas_faults.faults.hold_retrieve = release = threading.Event()
    failure: list[BaseException] = []

    def fetch() -> None:
        try:
            cache.fetch(fid)
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            failure.append(exc)

    reader = threading.Thread(target=fetch)
    reader.start()
    try:  # the room was checked; now the disk fills up before the bytes arrive
        wait_until(lambda: _retrieves(ngas_faults, fid) == 1, "the RETRIEVE of the download")
        filler = small_disk / "filler"
        with open(filler, "wb") as out:
            out.write(b"\0" * (free_bytes(small_disk) - MiB))
    finally:
        release.set()
        reader.join(timeout=120)
    assert len(failure) == 1 and isinstance(failure[0], CacheFull), failure
    message = str(failure[0])
    assert str(small_disk / "cache") in message and f"needs {len(data)} bytes" in message
    assert cache.entries() == [] and cache.stats().leftovers == 0
    assert [p for p in (small_disk / "cache" / "objects").rglob("*") if p.is_file()] == []
    filler.unlink()
    assert cache.fetch(fid).read_bytes() == data  # the index was left consistent


def test_eviction_makes_room_on_the_filesystem_before_a_download(
    small_disk, ngas_server, ngas_client, ngas_prefix, tmp_path
):
    ids = [f"{ngas_prefix}/room/{i}" for i in range(3)]
    for fid in ids:
        _put(ngas_client, tmp_path, fid, os.urandom(2 * MiB))
    cache = ReadCache(small_disk / "cache", default_url=ngas_server.url, mode="good")
    cache.fetch(ids[0])
    cache.fetch(ids[1])
    # The reserve leaves room for the third file only once one 2 MiB file is gone.
    cache.min_free = free_bytes(small_disk) - 2 * MiB + MiB
    cache.fetch(ids[2])
    assert {e.file_id for e in cache.entries()} == {ids[1], ids[2]}  # the LRU one went
    assert free_bytes(small_disk) >= cache.min_free

    cache.min_free = free_bytes(small_disk) + 64 * MiB  # more than evicting could ever free
    with pytest.raises(CacheFull) as err:
        cache.fetch(ids[0])
    assert str(cache.dir) in str(err.value) and "min_free" in str(err.value)
    assert ids[0] not in {e.file_id for e in cache.entries()}


def test_a_reserve_that_cannot_be_met_fails_before_any_download(
    ngas_server, ngas_faults, ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/reserve.bin"
    _put(ngas_client, tmp_path, fid, os.urandom(100_000))
    cache = _cache(tmp_path / "c", ngas_server.url, min_free=free_bytes(tmp_path) + 2**50)
    with pytest.raises(CacheFull, match="needs 100000 bytes free"):
        cache.fetch(fid)
    assert _retrieves(ngas_faults, fid) == 0 and cache.entries() == []
    tight = _cache(tmp_path / "c", ngas_server.url, max_size=50_000)
    with pytest.raises(CacheFull, match="max_size = 50000"):
        tight.fetch(fid)
    assert _retrieves(ngas_faults, fid) == 0


def test_max_size_is_made_room_for_before_the_download(
    ngas_server, ngas_faults, ngas_client, ngas_prefix, tmp_path
):
    ids = [f"{ngas_prefix}/lru/{i}" for i in range(3)]
    for fid in ids:
        _put(ngas_client, tmp_path, fid, os.urandom(100_000))
    cache = _cache(tmp_path / "c", ngas_server.url, max_size=250_000)
    cache.fetch(ids[0])
    cache.fetch(ids[1])
    ngas_faults.faults.hold_retrieve = release = threading.Event()
    third = threading.Thread(target=cache.fetch, args=(ids[2],))
    third.start()
    try:
        wait_until(lambda: _retrieves(ngas_faults, ids[2]) == 1, "the third download")
        during = {e.file_id for e in _cache(cache.dir, ngas_server.url).entries()}
    finally:
        release.set()
        third.join(timeout=120)
    assert during == {ids[1]}  # evicted while the download waited, not after it
    assert {e.file_id for e in cache.entries()} == {ids[1], ids[2]}


# ------------------------------------------------------- leftovers, damaged files
def test_prune_removes_the_partial_download_of_a_killed_process(
    ngas_server, ngas_faults, ngas_client, ngas_prefix, tmp_path, mlpipe_test_env
):
    fid = f"{ngas_prefix}/killed.bin"
    data = os.urandom(8 * MiB)
    _put(ngas_client, tmp_path, fid, data)
    directory = tmp_path / "c"
    ngas_faults.faults.slow_retrieve = 60.0  # 1 MiB every 7.5 s: the download is in progress
    script = (
        "import sys; from mlpipe.storage import ReadCache;"
        "ReadCache(sys.argv[1], default_url=sys.argv[2], mode='good').fetch(sys.argv[3])"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(directory), ngas_server.url, fid])
    try:
        parts = lambda: list((directory / "objects").glob("*/.*.part"))  # noqa: E731
        wait_until(lambda: bool(parts()) and parts()[0].stat().st_size > 0, "a .part file", proc)
        cache = ReadCache(directory, default_url=ngas_server.url)
        assert cache.prune() == (0, 0) and parts()  # a live download's file is kept
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    ngas_faults.faults.slow_retrieve = 0.0
    left = parts()[0].stat().st_size
    stats = cache.stats()
    assert (stats.entries, stats.leftovers, stats.size, stats.leftover_size) == (0, 1, left, left)
    env = {**mlpipe_test_env, "MLPIPE_CACHE_DIR": str(directory)}
    out = subprocess.run(
        [str(Path(sys.executable).parent / "mlpipe"), "cache", "prune"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "removed 1 file(s)" in out.stdout, out
    assert parts() == [] and cache.stats().size == 0
    assert cache.fetch(fid).read_bytes() == data


def test_a_damaged_cached_file_is_downloaded_again_never_served(
    ngas_server, ngas_faults, ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/damaged.bin"
    data = os.urandom(200_000)
    _put(ngas_client, tmp_path, fid, data)
    cache = _cache(tmp_path / "c", ngas_server.url)
    path = cache.fetch(fid, version=1)
    path.chmod(0o644)
    path.write_bytes(bytes(len(data)))  # same size, other bytes
    assert cache.fetch(fid, version=1).read_bytes() == data
    assert _retrieves(ngas_faults, fid) == 2

    path.chmod(0o644)
    with open(path, "r+b") as fh:
        fh.truncate(1000)  # shorter than the index says
    assert cache.fetch(fid).read_bytes() == data
    assert _retrieves(ngas_faults, fid) == 3

    copy = tmp_path / "same-bytes"
    copy.write_bytes(data)
    os.replace(copy, path)  # another inode and time, the same bytes: still good
    assert cache.fetch(fid, version=1).read_bytes() == data
    assert _retrieves(ngas_faults, fid) == 3

    path.chmod(0o644)
    path.write_bytes(bytes(len(data)))
    offline = _cache(tmp_path / "c", ngas_server.url, "offline")
    with pytest.raises(CacheMiss):  # offline: nothing to serve rather than damaged bytes
        offline.fetch(fid)


# ----------------------------------------------------------- readers and locks
READER = """
import hashlib, sys
from mlpipe.storage import ReadCache
cache = ReadCache(sys.argv[1], default_url=sys.argv[2], mode="offline")
with cache.pinned(sys.argv[3]) as path:
    print(path, flush=True)
    sys.stdin.readline()  # the test evicts meanwhile
    print(hashlib.sha256(path.read_bytes()).hexdigest(), flush=True)
"""


def test_a_pinned_path_survives_eviction_by_another_process(
    ngas_server, ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/pinned.bin"
    data = os.urandom(300_000)
    _put(ngas_client, tmp_path, fid, data)
    cache = _cache(tmp_path / "c", ngas_server.url)
    cache.fetch(fid)
    cmd = [sys.executable, "-c", READER, str(cache.dir), ngas_server.url, fid]
    reader = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdin is not None
        held = Path(reader.stdout.readline().strip())
        assert cache.evict(max_size=0) == (0, 0)
        assert cache.prune(everything=True) == (0, 0)
        assert held.exists() and cache.stats().entries == 1
        reader.stdin.write("go\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == hashlib.sha256(data).hexdigest()
        assert reader.wait(timeout=60) == 0
    finally:
        stop_process(reader)
    assert cache.prune(everything=True) == (1, len(data))  # unpinned: evicted now
    assert not held.exists()


HOLDER = """
import sys
from filelock import FileLock
lock = FileLock(sys.argv[1])  # kept referenced: released only when the process ends
lock.acquire()
print("held", flush=True)
sys.stdin.readline()  # hung, as far as the cache can tell
"""


def test_a_download_lock_held_by_a_hung_process_times_out(
    ngas_server, ngas_client, ngas_prefix, tmp_path
):
    fid = f"{ngas_prefix}/locked.bin"
    _put(ngas_client, tmp_path, fid, b"locked")
    cache = _cache(tmp_path / "c", ngas_server.url, lock_timeout=0.5)
    lock = cache.lock_path(entry_key(ngas_server.url, fid, 1))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(CacheLockTimeout) as err:
            cache.fetch(fid)
        assert time.monotonic() - start < 30
        assert str(lock) in str(err.value) and "lock_timeout" in str(err.value)
        assert cache.entries() == []
    finally:
        holder.kill()
        holder.wait()
    assert cache.fetch(fid).read_bytes() == b"locked"  # a dead holder holds nothing


# ----------------------------------------------------------------------- probe
def test_the_auto_probe_keeps_throughput_per_server(
    ngas_server, ngas_client, own_ngas, ngas_prefix, tmp_path
):
    data = os.urandom(2 * MiB)
    fast, slow = f"{ngas_prefix}/fast.bin", "f/slow.bin"
    _put(ngas_client, tmp_path, fast, data)
    _put(NgasClient(own_ngas.url), tmp_path, slow, data)
    cache = _cache(tmp_path / "c", ngas_server.url, "good")
    cache.fetch(fast)
    own_ngas.faults.slow_retrieve = 2.0  # 2 MiB in ~2 s: about 1 MB/s
    cache.fetch(f"ngas://{own_ngas.url.split('://', 1)[1]}/{slow}")
    auto = _cache(tmp_path / "c", ngas_server.url, "auto", probe_min_throughput_mbps=3.0)
    slow_probe = auto.probe(own_ngas.url)
    assert slow_probe.mode == "bad" and "throughput" in slow_probe.reason
    fast_probe = auto.probe(ngas_server.url)
    assert fast_probe.mode == "good", fast_probe
    assert fast_probe.throughput_mbps is not None and fast_probe.throughput_mbps > 3.0


# ------------------------------------------------------------------------ trees
TREE_READER = """
import sys
from mlpipe.storage import ReadCache
from mlpipe.storage.trees import tree_key
cache = ReadCache(sys.argv[1], mode="offline")
with cache.pin(tree_key("srv", "model", "m", "1")):
    print("pinned", flush=True)
    sys.stdin.readline()
"""


def _fill(size: int):  # what a download into the tree's temporary directory does
    def fill(tmp: Path) -> dict[str, str]:
        (tmp / "MLmodel").write_bytes(os.urandom(size))
        return {}

    return fill


def test_a_pinned_tree_survives_eviction_by_another_process(tmp_path):
    from mlpipe.storage.trees import TreeStore

    cache = ReadCache(tmp_path / "c", mode="good")
    tree = TreeStore(cache).put("srv", "model", "m", "1", _fill(1000))
    reader = subprocess.Popen(
        [sys.executable, "-c", TREE_READER, str(cache.dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "pinned"
        assert cache.evict(max_size=0) == (0, 0)
        assert cache.prune(everything=True) == (0, 0)
        assert (tree.path / "MLmodel").stat().st_size == 1000
    finally:
        reader.kill()
        reader.wait()
    assert cache.evict(max_size=0) == (1, 1000)
    assert not tree.path.exists()


def test_no_space_while_filling_a_tree_is_cache_full_and_leaves_nothing(small_disk):
    from mlpipe.storage.trees import TreeStore

    cache = ReadCache(small_disk / "cache", mode="good")
    trees = TreeStore(cache)
    with pytest.raises(CacheFull, match=str(small_disk / "cache")):
        trees.put("srv", "model", "m", "1", _fill(16 * MiB))  # twice the disk
    assert trees.entries() == [] and cache.stats().leftovers == 0
    assert list((small_disk / "cache" / "trees").iterdir()) == []
    assert trees.put("srv", "model", "m", "1", _fill(MiB)).size == MiB
