"""``mlpipe cache stats|prune|mode|ls``: the local read cache of NGAS/MLflow files."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from mlpipe.config import parse_size
from mlpipe.storage.cache import ReadCache


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("cache", help="local read cache: stats, prune, connection mode")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("stats", help="hits, misses, size")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_stats)

    p = actions.add_parser("prune", help="evict to the size limit, or remove more")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--all", action="store_true", help="remove every cached file")
    g.add_argument("--older-than", type=float, metavar="DAYS", help="unused for DAYS days")
    g.add_argument("--max-size", help="evict LRU files down to this size (e.g. 5G)")
    p.set_defaults(func=_prune)

    p = actions.add_parser(
        "ls", help="cached files, then model versions and run files, least recently used first"
    )
    p.set_defaults(func=_ls)

    p = actions.add_parser("mode", help="the effective connection mode (probes in auto mode)")
    p.set_defaults(func=_mode)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


def _stats(args: argparse.Namespace) -> int:
    st = ReadCache.from_config().stats()
    if args.json:
        print(json.dumps({**asdict(st), "directory": str(st.directory)}))
        return 0
    c = st.counters
    print(f"cache     {st.directory}")
    print(f"size      {_human(st.size)} of {_human(st.max_size)} in {st.entries} file(s)")
    print(f"hits      {st.hits} (of which served possibly stale: {int(c.get('stale_served', 0))})")
    print(f"misses    {st.misses} ({_human(c.get('bytes_downloaded', 0))} downloaded)")
    print(f"evictions {int(c.get('evictions', 0))}")
    if st.leftovers:
        print(
            f"leftovers {st.leftovers} partial download(s), {_human(st.leftover_size)} "
            "(in the size; mlpipe cache prune removes them)"
        )
    return 0


def _prune(args: argparse.Namespace) -> int:
    cache = ReadCache.from_config()
    if args.all:
        n, freed = cache.prune(everything=True)
    elif args.older_than is not None:
        n, freed = cache.prune(older_than=args.older_than * 86400)
    elif args.max_size:
        n, freed = cache.prune(max_size=parse_size(args.max_size, "--max-size"))
    else:
        n, freed = cache.prune()
    print(f"removed {n} file(s), freed {_human(freed)}")
    return 0


def _ls(args: argparse.Namespace) -> int:
    from mlpipe.storage.trees import TreeStore

    cache = ReadCache.from_config()
    for e in cache.entries():
        print(f"{e.size:>14} v{e.version:<4} {e.server}/{e.file_id}")
    for t in TreeStore(cache).entries():
        print(f"{t.size:>14} {t.kind} {t.name} {t.version} ({t.server})")
    return 0


def _mode(args: argparse.Namespace) -> int:
    cache = ReadCache.from_config()
    if cache.configured_mode != "auto":
        print(f"{cache.configured_mode} (configured)")
        return 0
    r = cache.probe()
    lat = f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "n/a"
    print(f"{r.mode} (auto: {r.reason}; latency {lat})")
    return 0
