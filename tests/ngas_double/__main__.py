"""Run the double in the foreground: ``PYTHONPATH=tests python -m ngas_double --port 7777``.

Prints ``READY <url>`` on stdout once it listens (the benchmark waits for it).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading

from ngas_double.server import NgasDouble


def _user(text: str) -> tuple[str, tuple[str, frozenset[str] | None]]:
    name, _, rest = text.partition(":")
    if rest.startswith("env:"):
        var, _, commands = rest[4:].partition(":")
        password = os.environ.get(var, "")
        if not password:
            raise SystemExit(f"--user {name}: environment variable {var} is empty or unset")
    else:
        password, _, commands = rest.partition(":")
    if not name or not password:
        raise SystemExit(f"--user {text!r}: expected NAME:PASSWORD[:CMD,CMD...]")
    return name, (password, frozenset(commands.split(",")) if commands else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", help="storage directory (default: a temporary one)")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD[:CMD,CMD...]",
        help="turn authorization on (STATUS excluded) with this user (repeat); "
        "without commands the user may run all. The password may also come from "
        "the environment: NAME:env:VARIABLE[:CMDS]",
    )
    args = parser.parse_args()
    users = dict(map(_user, args.user)) if args.user else None
    with tempfile.TemporaryDirectory(prefix="ngas-double-") as tmp:
        double = NgasDouble(args.root or tmp, args.host, args.port, users=users).start()
        print(f"READY {double.url}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
        double.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
