"""The ASGI application: routes, JSON forms, and the read-only policy.

Pages (each also JSON under ``/api/...`` or with ``Accept: application/json``)::

    /                      what is published
    /models                registered models: aliases, newest version, metrics
    /models/{name}         versions with metrics and lineage, metric-by-version plots
    /models/{name}/compare/{champion}/{challenger}
                           two versions (numbers or aliases) side by side: params, metrics,
                           training data, plots
    /runs                  runs of the published experiments
    /runs/{run_id}         params, metrics, lineage tags, outputs, predicted-vs-actual plot
    /outputs               published inference outputs with download links
    /files/{file_id}       download of a published file (Range, Content-Length)
    /plots/models/{name}/{metric}.png|svg, /plots/runs/{run_id}/predicted.png|svg
    /plots/models/{name}/versions/{version}/artifacts/{path}
                           a plot artifact (png, svg, jpg, gif) of a version's training run
    /monitor/{name}        the erosion monitor of a model: error and drift over time
    /plots/monitor/{run_id}/{figure}.png|svg
                           a monitor run's psi_max, rmse or mae by batch time, with the threshold
    /healthz               liveness (answers without asking MLflow)

Only GET and HEAD are accepted (anything else: 405 before any route runs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mlpipe.web import pages, plots
from mlpipe.web.catalog import Catalog, NotPublished, Unavailable

log = logging.getLogger(__name__)

ALLOWED_METHODS = ("GET", "HEAD")
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; img-src 'self'; style-src 'self'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-resource-policy": "same-origin",
}
MAX_HEADER_BYTES = 16 * 1024  # all request headers together (nginx allows less)
MAX_TARGET_BYTES = 4096  # path and query
ARTIFACT_IMAGES = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
}
UNAVAILABLE = "the results backend is unavailable; try again later"


class ReadOnlyGuard:
    """Refuses every method but GET/HEAD (405), oversized request targets (414) and headers
    (431) before any route runs, and adds the security headers to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            status, message = refusal
            extra = {"allow": ", ".join(ALLOWED_METHODS)} if status == 405 else {}
            response = JSONResponse(
                {"error": message, "status": status},
                status_code=status,
                headers={**extra, **SECURITY_HEADERS, "connection": "close"},
            )
            await response(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for key, value in SECURITY_HEADERS.items():
                    if key.encode() not in present:
                        headers.append((key.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)

    @staticmethod
    def _refusal(scope: Scope) -> tuple[int, str] | None:
        if scope["method"] not in ALLOWED_METHODS:
            return 405, "read-only site: only GET and HEAD"
        target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if target > MAX_TARGET_BYTES:
            return 414, "request target too long"
        if sum(len(k) + len(v) + 4 for k, v in scope.get("headers", [])) > MAX_HEADER_BYTES:
            return 431, "request headers too large"
        return None


def wants_json(request: Request) -> bool:
    """JSON for ``/api/...`` and for clients that ask for it and not for HTML."""
    if request.url.path.startswith("/api/") or request.url.path == "/api":
        return True
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def create_app(catalog: Catalog) -> Starlette:
    """The site for ``catalog`` (its settings say what is published)."""
    settings = catalog.settings
    site = settings.title

    def page(
        title: Callable[[Request], str],
        data: Callable[[Request], Any],
        render: Callable[[Any], str],
    ) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            value = data(request)
            if wants_json(request):
                return JSONResponse(value)
            return HTMLResponse(pages.layout(title(request), site, render(value)))

        return endpoint

    def param(request: Request, name: str) -> str:
        return str(request.path_params[name])

    def index_data(_: Request) -> dict[str, Any]:
        return {
            "experiments": list(settings.experiments),
            "models": list(settings.models),
            "links": {"models": "/api/models", "runs": "/api/runs", "outputs": "/api/outputs"},
        }

    def outputs_data(_: Request) -> list[dict[str, Any]]:
        return catalog.outputs()

    pages_ = [
        ("", page(lambda r: "Results", index_data, pages.index)),
        ("/models", page(lambda r: "Models", lambda r: catalog.models(), pages.models)),
        (
            "/models/{name}",
            page(
                lambda r: f"Model {param(r, 'name')}",
                lambda r: catalog.model(param(r, "name")),
                pages.model,
            ),
        ),
        (
            "/models/{name}/compare/{champion}/{challenger}",
            page(
                lambda r: (
                    f"Model {param(r, 'name')}: {param(r, 'champion')} vs {param(r, 'challenger')}"
                ),
                lambda r: catalog.comparison(
                    param(r, "name"), param(r, "champion"), param(r, "challenger")
                ),
                pages.comparison,
            ),
        ),
        ("/runs", page(lambda r: "Runs", lambda r: catalog.runs(), pages.runs)),
        (
            "/runs/{run_id}",
            page(
                lambda r: f"Run {param(r, 'run_id')}",
                lambda r: catalog.run(param(r, "run_id")),
                pages.run,
            ),
        ),
        ("/outputs", page(lambda r: "Inference outputs", outputs_data, pages.outputs_table)),
        (
            "/monitor/{name}",
            page(
                lambda r: f"Erosion monitor: {param(r, 'name')}",
                lambda r: catalog.monitor(param(r, "name")),
                pages.monitor,
            ),
        ),
    ]

    def download(request: Request) -> Response:
        pub = catalog.published(param(request, "file_id"))
        path = catalog.local_file(pub)
        media = "text/csv" if pub.name.endswith(".csv") else "application/octet-stream"
        return FileResponse(
            path,
            media_type=media,
            filename=pub.name,
            headers={"x-mlpipe-file-version": str(pub.version)},
        )

    def image(body: bytes, fmt: str) -> Response:
        return Response(
            body, media_type=plots.FORMATS[fmt], headers={"cache-control": "public, max-age=60"}
        )

    def plot_format(request: Request) -> plots.Format:
        fmt = param(request, "fmt")
        if fmt == "png":
            return "png"
        if fmt == "svg":
            return "svg"
        raise NotPublished(f"plot format {fmt!r}: only png and svg")

    def model_plot(request: Request) -> Response:
        fmt = plot_format(request)
        name, metric = param(request, "name"), param(request, "metric")
        points = catalog.metric_over_versions(name, metric)
        return image(plots.metric_over_versions(name, metric, points, fmt), fmt)

    def version_plot(request: Request) -> Response:
        path = param(request, "path")
        media = ARTIFACT_IMAGES.get(path.rsplit(".", 1)[-1].lower())
        if media is None:
            raise NotPublished(f"plot {path!r}: not an image")
        body = catalog.version_plot(param(request, "name"), param(request, "version"), path)
        return Response(body, media_type=media, headers={"cache-control": "public, max-age=60"})

    def run_plot(request: Request) -> Response:
        fmt = plot_format(request)
        run_id = param(request, "run_id")
        actual, predicted, column = catalog.predicted_vs_actual(run_id)
        title = f"run {run_id[:12]}: {column} ({len(actual)} rows)"
        return image(plots.predicted_vs_actual(title, actual, predicted, fmt), fmt)

    def monitor_plot(request: Request) -> Response:
        fmt = plot_format(request)
        run_id, figure = param(request, "run_id"), param(request, "figure")
        model, points, threshold = catalog.monitor_series(run_id, figure)
        title = f"{model}: {figure} by batch ({len(points)} batches)"
        return image(plots.figure_over_time(title, figure, points, threshold, fmt), fmt)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def css(_: Request) -> Response:
        return Response(pages.CSS, media_type="text/css")

    def error_response(request: Request, status: int, message: str) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message, "status": status}, status_code=status)
        return HTMLResponse(
            pages.layout(f"Error {status}", site, pages.error(status, message)), status_code=status
        )

    async def not_published(request: Request, exc: Exception) -> Response:
        log.info("404 %s: %s", request.url.path[:200], exc)
        return error_response(request, 404, "not found")

    async def unavailable(request: Request, exc: Exception) -> Response:
        log.error("502 %s: %s", request.url.path[:200], exc)
        return error_response(request, 502, UNAVAILABLE)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        message = "not found" if status == 404 else str(getattr(exc, "detail", "error"))
        return error_response(request, status, message)

    routes = [Route("/healthz", health), Route("/static/site.css", css)]
    for path, endpoint in pages_:
        routes.append(Route(path or "/", endpoint))
        routes.append(Route("/api" + path, endpoint))
    routes += [
        Route("/files/{file_id:path}", download),
        Route("/plots/models/{name}/{metric}.{fmt}", model_plot),
        Route("/plots/models/{name}/versions/{version}/artifacts/{path:path}", version_plot),
        Route("/plots/runs/{run_id}/predicted.{fmt}", run_plot),
        Route("/plots/monitor/{run_id}/{figure}.{fmt}", monitor_plot),
    ]
    handlers: Mapping[Any, Any] = {
        NotPublished: not_published,
        Unavailable: unavailable,
        HTTPException: http_error,
    }
    app = Starlette(routes=routes, exception_handlers=dict(handlers))
    app.add_middleware(ReadOnlyGuard)
    return app
