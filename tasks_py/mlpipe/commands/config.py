"""``mlpipe config show``: print the effective configuration (secrets masked)."""

from __future__ import annotations

import argparse
import json

from mlpipe.config import as_dict, load_config, render


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("config", help="show the effective mlpipe configuration")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the effective config (secrets masked)")
    show.add_argument("--json", action="store_true", help="JSON instead of TOML")
    show.set_defaults(func=_show)


def _show(args: argparse.Namespace) -> int:
    config = load_config()
    if args.json:
        print(json.dumps(as_dict(config), default=str, indent=2))
    else:
        print(render(config), end="")
    return 0
