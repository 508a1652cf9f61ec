"""``mlpipe web serve``: the read-only results site (needs the ``[web]`` extra)."""

from __future__ import annotations

import argparse
import os

from mlpipe.errors import BadInput

ENV_EXPERIMENTS = "MLPIPE_WEB_EXPERIMENTS"
ENV_MODELS = "MLPIPE_WEB_MODELS"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("web", help="the read-only results site")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve",
        help="serve the results site (behind nginx; binds the loopback by default)",
        description=(
            "Serve registered models, runs of the given experiments and their published "
            "inference outputs, read-only. MLflow account: MLFLOW_TRACKING_USERNAME/"
            "MLFLOW_TRACKING_PASSWORD; MLflow and NGAS locations: the mlpipe config."
        ),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--experiment",
        action="append",
        default=[],
        help=f"MLflow experiment to publish (repeat; default: ${ENV_EXPERIMENTS}, comma-separated)",
    )
    serve.add_argument(
        "--model",
        action="append",
        default=[],
        help=f"registered model to show (repeat; default: ${ENV_MODELS}, else [model] name)",
    )
    serve.add_argument("--refresh", type=float, default=15.0, help="seconds a listing is reused")
    serve.add_argument("--title", default="mlpipe results", help="site title")
    serve.set_defaults(func=_serve)


def _names(given: list[str], env: str) -> tuple[str, ...]:
    names = given or [n for n in os.environ.get(env, "").split(",")]
    return tuple(n.strip() for n in names if n.strip())


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from mlpipe.web.app import create_app
        from mlpipe.web.catalog import Catalog
        from mlpipe.web.settings import WebSettings
    except ImportError as exc:
        raise BadInput(
            f"mlpipe web needs the [web] extra ({exc.name} is missing): pip install 'mlpipe[web]'"
        ) from None
    from mlpipe.config import load_config

    if not 0 < args.port < 65536:
        raise BadInput(f"mlpipe web serve --port {args.port}: must be 1-65535")
    config = load_config()
    settings = WebSettings(
        experiments=_names(args.experiment, ENV_EXPERIMENTS),
        models=_names(args.model, ENV_MODELS) or (config.model.name,),
        refresh=args.refresh,
        title=args.title,
        alias=config.model.alias,
    )
    app = create_app(Catalog.from_config(settings, config))
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        server_header=False,
        timeout_keep_alive=5,
        limit_concurrency=64,
        h11_max_incomplete_event_size=16 * 1024,
        log_level="info",
    )
    return 0
