"""``mlpipe compare CHAMPION CHALLENGER``: two registered model versions side by side."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import quote

from mlpipe.errors import BadInput

FORMATS = ("text", "markdown", "json")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "compare",
        help="compare two registered model versions (params, metrics, data, plots)",
        description=(
            "Compare CHAMPION with CHALLENGER, each NAME@ALIAS or NAME/VERSION (models:/ "
            "optional; aliases resolved now): their runs' parameters and metrics, the data "
            "each was trained on (lineage) and their plot artifacts. Unknown model, version "
            "or alias: exit 2; MLflow failing: exit 1. MLflow account: "
            "MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD."
        ),
    )
    parser.add_argument("champion", help="e.g. seattle-weather@production")
    parser.add_argument("challenger", help="e.g. seattle-weather/5")
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="text (default), markdown or json"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        help="write the report to this file (markdown: with the plots downloaded into "
        "FILE's folder under <stem>-plots/ and embedded)",
    )
    parser.set_defaults(func=_compare)


def _compare(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient

    from mlpipe.tasks import compare, compare_report
    from mlpipe.tasks.context import TaskContext

    output: Path | None = args.output
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        raise BadInput(f"mlpipe compare --output {output}: not a file in an existing folder")
    TaskContext.from_config()  # MLflow at [mlflow] tracking_uri
    result = compare.compare(MlflowClient(), args.champion, args.challenger)
    if args.format == "json":
        report = json.dumps(result.as_dict(), indent=2) + "\n"
    elif args.format == "text":
        report = compare_report.text(result)
    else:
        images = None
        if output is not None:
            folder = f"{output.stem}-plots"

            def images(item: compare.Side, path: str) -> str:
                return quote(f"{folder}/{item.role}/{path}")

            for item in (result.champion, result.challenger):
                for path in item.plots:
                    compare.download_plot(item, path, output.parent / folder / item.role)
        report = compare_report.markdown(result, images)
    if output is None:
        sys.stdout.write(report)
    else:
        output.write_text(report, encoding="utf-8")
        print(f"mlpipe compare: wrote {output}", file=sys.stderr)
    return 0
