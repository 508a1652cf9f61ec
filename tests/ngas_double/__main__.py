"""Run the double in the foreground: ``PYTHONPATH=tests python -m ngas_double --port 7777``.

Prints ``READY <url>`` on stdout once it listens (the benchmark waits for it).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading

from ngas_double.server import NgasDouble


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", help="storage directory (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ngas-double-") as tmp:
        double = NgasDouble(args.root or tmp, args.host, args.port).start()
        print(f"READY {double.url}", flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
        double.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
