"""The ASGI application of ``mlpipe serve``.

Routes (those of ``mlflow models serve``, plus the version that answered)::

    GET  /ping, /health   200 once a version is loaded, else 503
    GET  /version         the version answering: name, version, run id, alias, loaded at,
                          and what the alias polls saw (errors, refused versions)
    POST /invocations     MLflow scoring JSON or CSV -> {"predictions": [...]}; headers
                          X-Mlpipe-Model-Name and X-Mlpipe-Model-Version name the version

Bad bodies are 400 (415 for a content type, 413 beyond ``max_body``) with
``{"error": "...", "status": N}`` saying what is wrong. The model runs in a worker
thread; each request reads :attr:`AliasFollower.current` once, so its answer and its
headers come from the same version.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mlpipe.serve import scoring
from mlpipe.serve.follower import AliasFollower
from mlpipe.serve.versions import LoadedModel

log = logging.getLogger(__name__)

HEADER_VERSION = "X-Mlpipe-Model-Version"
HEADER_NAME = "X-Mlpipe-Model-Name"
NO_MODEL = "no model version is loaded yet"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise scoring.BadRequest(f"the body is {length} bytes; at most {limit} are accepted", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise scoring.BadRequest(f"the body is over {limit} bytes; send fewer rows", 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _score(loaded: LoadedModel, body: bytes, content_type: str) -> bytes:
    """Parse, predict, encode (in a worker thread: none of it blocks the event loop)."""
    data, params = scoring.parse(body, content_type, loaded.schema)
    document: dict[str, Any] = {"predictions": scoring.jsonable(loaded.predict(data, params))}
    return scoring.dumps(document)


def create_app(follower: AliasFollower, max_body: int = 1024**2, poll: bool = True) -> Starlette:
    """The application serving ``follower``'s version; ``poll`` starts its polling thread
    when the server starts (and stops it at shutdown)."""

    async def health(request: Request) -> Response:
        if follower.current is None:
            return _error(503, NO_MODEL)
        return Response("\n", media_type="application/json")

    async def version(request: Request) -> Response:
        return JSONResponse(follower.report(), status_code=200 if follower.current else 503)

    async def invocations(request: Request) -> Response:
        loaded = follower.current  # read once: this request's version
        if loaded is None:
            return _error(503, NO_MODEL)
        headers = {HEADER_VERSION: loaded.version, HEADER_NAME: loaded.name}
        try:
            body = await _body(request, max_body)
            content_type = request.headers.get("content-type", "")
            answer = await run_in_threadpool(_score, loaded, body, content_type)
        except scoring.BadRequest as exc:
            return _error(exc.status, str(exc), headers)
        return Response(answer, media_type="application/json", headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if poll:
            follower.start()
        try:
            yield
        finally:
            if poll:
                await run_in_threadpool(follower.stop)

    return Starlette(
        routes=[
            Route("/ping", health, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/version", version, methods=["GET"]),
            Route("/invocations", invocations, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
