#!/usr/bin/env python3
"""Post a Markdown file as a note (comment) on the merge request of this GitLab pipeline.

    python3 .ci/post_mr_note.py model-report/report.md

Reads CI_API_V4_URL, CI_PROJECT_ID and CI_MERGE_REQUEST_IID (set by GitLab) and the
token MLPIPE_NOTE_TOKEN (a project access token with the api scope, Reporter role).
Standard library only. Exit 0 when GitLab answered 201, else 1 with its answer.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

MAX_BODY = 60_000


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    missing = [
        k
        for k in ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID", "MLPIPE_NOTE_TOKEN")
        if not os.environ.get(k)
    ]
    if missing:
        print(f"post_mr_note: {', '.join(missing)} not set", file=sys.stderr)
        return 1
    body = Path(argv[0]).read_text(encoding="utf-8")[:MAX_BODY]
    url = (
        f"{os.environ['CI_API_V4_URL']}/projects/{os.environ['CI_PROJECT_ID']}"
        f"/merge_requests/{os.environ['CI_MERGE_REQUEST_IID']}/notes"
    )
    request = urllib.request.Request(
        url,
        data=json.dumps({"body": body}).encode(),
        headers={
            "PRIVATE-TOKEN": os.environ["MLPIPE_NOTE_TOKEN"],
            "Content-Type": "application/json",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        print(f"post_mr_note: GitLab answered {exc.code}: {exc.read()[:500]!r}", file=sys.stderr)
        return 1
    print(f"post_mr_note: posted {argv[0]} ({len(body)} characters), HTTP {status}")
    return 0 if status == 201 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
