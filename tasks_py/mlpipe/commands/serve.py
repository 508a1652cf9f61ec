"""``mlpipe serve [MODEL]``: a registered model's alias over HTTP, following the alias
(needs the ``[serve]`` extra; docs/serve.md).

Settings in ``[serve]`` (``MLPIPE_SERVE_<KEY>``), the options override them. The
alias's version is loaded and checked before the server listens: when none can be
(no such model or alias, MLflow failing, the version refused), it exits 2 (bad
input) or 1 with the reason. It binds ``127.0.0.1`` unless told otherwise; the
scoring endpoint has no authentication of its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

from mlpipe.errors import BadInput


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "serve",
        help="serve a registered model's alias over HTTP, following it",
        description=(
            "Serve models:/MODEL@ALIAS over HTTP (MLflow's scoring protocol: /invocations, "
            "/ping, /health, /version). When the alias moves, the new version is loaded and "
            "checked in the background, then answers; a version that fails its check does "
            "not. MLflow account: MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD."
        ),
    )
    parser.add_argument(
        "model", nargs="?", help="registered model (default [serve] model, else [model] name)"
    )
    parser.add_argument(
        "--alias", help="the alias to follow (default [serve] alias, else [model] alias)"
    )
    parser.add_argument("--host", help="address to bind (default [serve] host: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default [serve] port: 8100)")
    parser.add_argument("--poll-interval", type=float, help="seconds between alias polls")
    parser.add_argument(
        "--check-input", help="scoring JSON file a new version must answer before it serves"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the settings and the check input; contact nothing, serve nothing",
    )
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from mlpipe.serve.app import create_app
        from mlpipe.serve.follower import AliasFollower
        from mlpipe.serve.versions import Check
    except ImportError as exc:
        raise BadInput(
            f"mlpipe serve needs the [serve] extra ({exc.name} is missing): "
            "pip install 'mlpipe[serve]'"
        ) from None
    from mlpipe.config import load_config, validate_serve
    from mlpipe.tasks.context import TaskContext

    config = load_config()
    given = {
        "model": args.model,
        "alias": args.alias,
        "host": args.host,
        "port": args.port,
        "poll_interval": args.poll_interval,
        "check_input": args.check_input,
    }
    cfg = dataclasses.replace(config.serve, **{k: v for k, v in given.items() if v is not None})
    if cfg.poll_interval > cfg.poll_max:
        cfg = dataclasses.replace(cfg, poll_max=max(cfg.poll_max, cfg.poll_interval))
    validate_serve(cfg, lambda key: f"mlpipe serve --{key.replace('_', '-')} ([serve] {key})")
    name = cfg.model or config.model.name
    alias = cfg.alias or config.model.alias
    check = Check.from_file(cfg.check_input)
    if args.check:
        print(
            f"serve models:/{name}@{alias} on http://{cfg.host}:{cfg.port}, polling every "
            f"{cfg.poll_interval:g}s, new versions checked with {check.source}: settings are valid"
        )
        return 0
    logging.getLogger("mlpipe.serve").setLevel(logging.INFO)
    ctx = TaskContext(config)
    ctx.setup_mlflow()
    follower = AliasFollower(ctx.models, name, alias, check, cfg.poll_interval, cfg.poll_max)
    loaded = follower.load_initial()
    logging.getLogger("mlpipe.serve").info(
        "serving models:/%s@%s = version %s (run %s) on http://%s:%d, polling every %gs",
        name,
        alias,
        loaded.version,
        loaded.run_id,
        cfg.host,
        cfg.port,
        cfg.poll_interval,
    )
    uvicorn.run(
        create_app(follower, max_body=cfg.max_body),
        host=cfg.host,
        port=cfg.port,
        server_header=False,
        timeout_keep_alive=5,
        limit_concurrency=cfg.max_concurrency,
        access_log=cfg.access_log,
        log_level="info",
    )
    return 0
