"""A real NGAS built from source and started on 127.0.0.1 (tests' ``NGAS_SOURCE``, the bench).

``build_real_ngas(source, tmp)`` installs NGAS from ``source`` (a source tree, or a git
repository/URL cloned into ``tmp``) into a venv in ``tmp``; its ``start(dir)`` prepares an
NGAS root in ``dir`` with the sample configuration plus what roles/ngas always adds for
mlpipe (the empty-file marker's mime type and Stream), starts ``ngamsServer`` on a free
port and waits until it is ONLINE (one build, as many servers as needed).
``start_real_ngas(source, tmp)`` does both. Building needs the Debian packages libdb-dev
and sqlite3.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from ngas_double.server import MLPIPE_STREAM_MIME_TYPES
from procs import free_port, wait_until


class RealNgasError(RuntimeError):
    """NGAS cannot be built here (what is missing, and how to install it)."""


def ngas_online(url: str) -> bool:
    r = requests.get(f"{url}/STATUS", timeout=5)
    return r.status_code == 200 and 'State="ONLINE"' in r.text


def with_mlpipe_streams(cfg: str) -> str:
    """The sample configuration plus what roles/ngas always adds for mlpipe: a
    MimeTypeMap and a Stream (on the octet-stream Stream's storage sets) for each
    mime type of the double's MLPIPE_STREAM_MIME_TYPES (empty-file markers)."""
    octet = re.search(
        r'<Stream MimeType="application/octet-stream"[^>]*>(.*?)</Stream>', cfg, re.DOTALL
    )
    assert octet, "the sample NGAS configuration has no application/octet-stream Stream"
    for mime in sorted(MLPIPE_STREAM_MIME_TYPES):
        cfg = re.sub(
            r"(<MimeTypes\b[^>]*>)",
            rf'\1\n<MimeTypeMap Extension="empty" MimeType="{mime}"/>',
            cfg,
            count=1,
        )
        cfg = cfg.replace(
            "<Streams>",
            f'<Streams>\n<Stream MimeType="{mime}" PlugIn="ngamsGenDapi" PlugInPars="">'
            f"{octet.group(1)}</Stream>",
            1,
        )
    return cfg


@dataclass(frozen=True)
class BuiltNgas:
    """NGAS installed in a venv: ``start(tmp)`` runs a server of its own from it."""

    source: Path
    venv: Path

    def start(self, tmp: Path) -> tuple[str, Path, subprocess.Popen[bytes]]:
        """A new NGAS root in ``tmp``, its server started: (url, NGAS root, server process)."""
        tmp.mkdir(parents=True, exist_ok=True)
        root = tmp / "ngas-root"
        subprocess.run(
            ["bash", str(self.source / "prepare_ngas_root.sh"), "-f", str(root)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        cfg = root / "cfg" / "ngamsServer.conf"
        port = free_port()
        text = cfg.read_text()
        text = re.sub(r'PortNo="\d+"', f'PortNo="{port}"', text)
        if "IpAddress=" in text:
            text = re.sub(r'IpAddress="[^"]*"', 'IpAddress="127.0.0.1"', text)
        else:
            text = re.sub(r"<Server\b", '<Server IpAddress="127.0.0.1"', text, count=1)
        cfg.write_text(with_mlpipe_streams(text))
        log = tmp / "ngas-server.log"
        proc = subprocess.Popen(
            [str(self.venv / "bin" / "ngamsServer"), "-cfg", str(cfg), "-v", "3", "-autoonline"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: ngas_online(url), f"real NGAS at {url}", proc, log=log)
        return url, root, proc


def build_real_ngas(source: str, tmp: Path) -> BuiltNgas:
    """Install NGAS from ``source`` (a source tree, or a git repository/URL) in ``tmp``."""
    src = Path(source)
    if not (src / "src" / "ngamsCore").is_dir():
        clone = tmp / "ngas-src"
        subprocess.run(["git", "clone", "-q", "--depth", "1", source, str(clone)], check=True)
        src = clone
    if not Path("/usr/include/db.h").exists() or shutil.which("sqlite3") is None:
        raise RealNgasError(
            "NGAS_SOURCE is set but building NGAS needs Debian packages libdb-dev and sqlite3: "
            "apt-get install -y libdb-dev sqlite3"
        )
    venv = tmp / "ngas-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    for pkg in ("ngamsCore", "ngamsPClient", "ngamsServer", "ngamsPlugIns"):  # this order
        subprocess.run([*pip, str(src / "src" / pkg)], check=True)
    return BuiltNgas(source=src, venv=venv)


def start_real_ngas(source: str, tmp: Path) -> tuple[str, Path, subprocess.Popen[bytes]]:
    """Build NGAS from ``source`` in ``tmp`` and start it: (url, NGAS root, server process)."""
    return build_real_ngas(source, tmp).start(tmp)
