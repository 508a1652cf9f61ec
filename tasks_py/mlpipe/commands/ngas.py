"""``mlpipe ngas status|archive|retrieve|ls|versions|check|rm``: talk to NGAS.

The server is ``[ngas] url`` of the config (``MLPIPE_NGAS_URL``) unless
``--url`` is given. Exit codes: 0 ok, 1 failure (message from NGAS), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from mlpipe.config import load_config
from mlpipe.errors import BadInput
from mlpipe.storage.ngas import NgasClient


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("ngas", help="NGAS archive: status, archive, retrieve, list")
    parser.add_argument("--url", help="NGAS base URL (default: [ngas] url)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("status", help="STATUS; exit 1 unless the server is ONLINE")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_status)

    p = actions.add_parser("archive", help="archive a file under a path-like file id")
    p.add_argument("path", type=Path)
    p.add_argument("file_id", help="e.g. raw/2026/obs42.fits (default: the file name)", nargs="?")
    p.add_argument("--mime-type", default="application/octet-stream")
    p.set_defaults(func=_archive)

    p = actions.add_parser("retrieve", help="download a file (verified by crc32)")
    p.add_argument("file_id")
    p.add_argument("dest", type=Path, help="destination file or existing directory")
    p.add_argument("--version", type=int)
    p.add_argument("--no-cache", action="store_true", help="bypass the local read cache")
    p.set_defaults(func=_retrieve)

    p = actions.add_parser("ls", help="list files by id prefix (newest version of each)")
    p.add_argument("prefix", nargs="?", default="")
    p.add_argument("--all-versions", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_ls)

    p = actions.add_parser("versions", help="all versions of one file id")
    p.add_argument("file_id")
    p.set_defaults(func=_versions)

    p = actions.add_parser("check", help="CHECKFILE: NGAS verifies its stored copy")
    p.add_argument("file_id")
    p.set_defaults(func=_check)

    p = actions.add_parser("rm", help="REMFILE all versions (or --version) of a file id")
    p.add_argument("file_id")
    p.add_argument("--version", type=int)
    p.add_argument("--yes", action="store_true", help="really delete (required)")
    p.set_defaults(func=_rm)


def _client(args: argparse.Namespace) -> NgasClient:
    return NgasClient.from_config(load_config(), url=args.url)


def _status(args: argparse.Namespace) -> int:
    client = _client(args)
    st = client.status()
    if args.json:
        print(json.dumps({"url": client.url, **asdict(st), "online": st.online}))
    else:
        print(f"{client.url}: {st.status} {st.state}/{st.sub_state} NGAS {st.version}")
    return 0 if st.online else 1


def _archive(args: argparse.Namespace) -> int:
    if not args.path.is_file():
        raise BadInput(f"{args.path}: no such file")
    info = _client(args).archive(args.path, args.file_id or args.path.name, args.mime_type)
    print(f"{info.file_id} version {info.version} ({info.size} bytes, crc32 {info.checksum})")
    return 0


def _retrieve(args: argparse.Namespace) -> int:
    dest: Path = args.dest
    if dest.is_dir():
        dest = dest / args.file_id.rsplit("/", 1)[-1]
    if args.no_cache:
        info = _client(args).retrieve(args.file_id, dest, version=args.version)
        print(f"{dest} <- {info.file_id} version {info.version}")
    else:
        from mlpipe.storage.cache import ReadCache

        cache = ReadCache.from_config()
        cache.copy_to(args.file_id, dest, version=args.version, server=args.url)
        print(f"{dest} <- {args.file_id}")
    return 0


def _ls(args: argparse.Namespace) -> int:
    rows = _client(args).list(args.prefix, all_versions=args.all_versions)
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=1))
    else:
        for r in rows:
            print(f"{r.size:>14} v{r.version:<4} {r.ingestion_date:<24} {r.file_id}")
    return 0


def _versions(args: argparse.Namespace) -> int:
    rows = _client(args).versions(args.file_id)
    if not rows:
        print(f"{args.file_id}: not in NGAS")
        return 1
    for r in rows:
        print(
            f"v{r.version:<4} {r.size:>14} crc32 {r.checksum:<11} "
            f"disk {r.disk_id} {r.ingestion_date}"
        )
    return 0


def _check(args: argparse.Namespace) -> int:
    print(_client(args).check(args.file_id))
    return 0


def _rm(args: argparse.Namespace) -> int:
    if not args.yes:
        raise BadInput(f"refusing to delete {args.file_id} from NGAS without --yes")
    for r in _client(args).delete(args.file_id, args.version):
        print(f"removed {r.file_id} version {r.version} (disk {r.disk_id})")
    return 0
