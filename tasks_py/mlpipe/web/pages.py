"""HTML pages of the results site: plain server-rendered markup, every value escaped,
no scripts (the Content-Security-Policy allows none), one stylesheet (``/static/site.css``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

CSS = """body{font-family:system-ui,sans-serif;margin:0;color:#222}
header{background:#1f3b57;color:#fff;padding:.6em 1.2em}
header a{color:#fff;margin-right:1.2em;text-decoration:none}
main{padding:1em 1.2em}table{border-collapse:collapse;margin:.5em 0 1.2em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f3f6}code{font-size:.9em}img{max-width:100%;border:1px solid #ddd}
.muted{color:#777}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _href(path: str) -> str:
    """A site path with every segment percent-encoded (keeps the '/' separators)."""
    return _e(quote(path, safe="/"))


def _num(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else _e(value)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """``rows`` are already-escaped cell markup."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    heads = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"


def _kv(items: Mapping[str, Any]) -> str:
    if not items:
        return '<p class="muted">none</p>'
    return _table(["name", "value"], ([_e(k), _num(v)] for k, v in items.items()))


def _metrics(metrics: Mapping[str, Any]) -> str:
    return ", ".join(f"{_e(k)}={_num(v)}" for k, v in metrics.items())


def layout(title: str, site: str, body: str) -> str:
    nav = (
        '<a href="/">' + _e(site) + "</a>"
        '<a href="/models">models</a><a href="/runs">runs</a><a href="/outputs">outputs</a>'
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)} - {_e(site)}</title>"
        '<link rel="stylesheet" href="/static/site.css"></head>'
        f"<body><header>{nav}</header><main><h1>{_e(title)}</h1>{body}"
        '<p class="muted">Every page is also JSON: <code>/api/...</code> or '
        "<code>Accept: application/json</code>.</p></main></body></html>"
    )


def index(data: Mapping[str, Any]) -> str:
    return (
        f"<p>Read-only results of the experiments {_e(', '.join(data['experiments']))}.</p>"
        '<ul><li><a href="/models">registered models</a> (versions, aliases, metrics, lineage)'
        '</li><li><a href="/runs">runs</a> (params, metrics, plots)</li>'
        '<li><a href="/outputs">inference outputs</a> (downloads)</li></ul>'
    )


def models(data: Sequence[Mapping[str, Any]]) -> str:
    if not data:
        return '<p class="muted">No registered model yet.</p>'
    rows = []
    for m in data:
        aliases = ", ".join(f"{_e(a)} &rarr; v{_e(v)}" for a, v in m["aliases"].items())
        rows.append(
            [
                f'<a href="{_href("/models/" + m["name"])}">{_e(m["name"])}</a>',
                _e(m["alias_version"] and "v" + m["alias_version"]),
                aliases,
                _e(m["versions"]),
                _metrics(m["metrics"]),
            ]
        )
    alias = data[0]["alias"]
    return _table(["model", alias, "aliases", "versions", f"metrics ({alias})"], rows)


def model(data: Mapping[str, Any]) -> str:
    parts = []
    if data["description"]:
        parts.append(f"<p>{_e(data['description'])}</p>")
    aliases = ", ".join(f"{_e(a)} &rarr; v{_e(v)}" for a, v in data["aliases"].items())
    parts.append(f"<p>Aliases: {aliases or 'none'}</p>")
    parts.append(
        f'<p><a href="{_href("/monitor/" + data["name"])}">erosion monitor</a> '
        "(error and drift of the inference batches over time)</p>"
    )
    for plot in data["plots"]:
        metric = plot.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        parts.append(
            f'<figure><img src="{_href(plot)}" alt="{_e(metric)} by model version" '
            f'width="640" height="360"><figcaption>{_e(metric)} by version '
            f'(<a href="{_href(plot[:-4] + ".svg")}">SVG</a>)</figcaption></figure>'
        )
    rows = []
    for v in data["versions"]:
        run = v["run_id"]
        link = v.get("compare", "")
        rows.append(
            [
                _e(v["version"])
                + (
                    f' <a href="{_href(link)}">compare with {_e(link.split("/")[-2])}</a>'
                    if link
                    else ""
                ),
                _e(", ".join(v["aliases"])),
                _e(v["created"]),
                f'<a href="{_href("/runs/" + run)}"><code>{_e(run[:12])}</code></a>' if run else "",
                _metrics(v["metrics"]),
                _e(v["parent_version"] and "v" + v["parent_version"]),
                "<br>".join(f"<code>{_e(d)}</code>" for d in v["data_ids"]),
            ]
        )
    parts.append(
        _table(["version", "aliases", "created", "run", "metrics", "parent", "training data"], rows)
    )
    return "".join(parts)


def runs(data: Sequence[Mapping[str, Any]]) -> str:
    if not data:
        return '<p class="muted">No run yet.</p>'
    rows = [
        [
            f'<a href="{_href("/runs/" + r["run_id"])}"><code>{_e(r["run_id"][:12])}</code></a>',
            _e(r["experiment"]),
            _e(r["step"] or r["run_name"]),
            _e(r["task"]),
            _e(r["status"]),
            _e(r["start_time"]),
            _metrics(r["metrics"]),
        ]
        for r in data
    ]
    return _table(["run", "experiment", "step", "task", "status", "started", "metrics"], rows)


def outputs_table(files: Sequence[Mapping[str, Any]]) -> str:
    if not files:
        return '<p class="muted">No published output yet.</p>'
    rows = [
        [
            f'<a href="{_href(f["download"])}" download>{_e(f["file_id"])}</a>',
            _e(f["version"]),
            _e(f["size"]),
            _e(f["model"] and f"{f['model']} v{f['model_version']}"),
            f'<a href="{_href("/runs/" + f["run_id"])}"><code>{_e(f["run_id"][:12])}</code></a>',
            _e(f["created"]),
        ]
        for f in files
    ]
    return _table(["file", "version", "bytes", "model", "run", "created"], rows)


def run(data: Mapping[str, Any]) -> str:
    parts = [
        _table(
            ["experiment", "step", "task", "status", "started", "ended"],
            [
                [
                    _e(data["experiment"]),
                    _e(data["step"] or data["run_name"]),
                    _e(data["task"]),
                    _e(data["status"]),
                    _e(data["start_time"]),
                    _e(data["end_time"]),
                ]
            ],
        )
    ]
    for plot in data["plots"]:
        parts.append(
            f'<figure><img src="{_href(plot)}" alt="predicted against actual" width="520" '
            f'height="520"><figcaption>predicted against actual '
            f'(<a href="{_href(plot[:-4] + ".svg")}">SVG</a>)</figcaption></figure>'
        )
    parts += ["<h2>Metrics</h2>", _kv(data["metrics"]), "<h2>Parameters</h2>", _kv(data["params"])]
    parts += ["<h2>Lineage</h2>", _kv(data["tags"])]
    if data["outputs"]:
        parts += ["<h2>Outputs</h2>", outputs_table(data["outputs"])]
    return "".join(parts)


def _side_head(side: Mapping[str, Any]) -> list[str]:
    run = side["run_id"]
    return [
        _e(side["role"]),
        _e(f"v{side['version']}") + (f" ({_e(side['alias'])})" if side["alias"] else ""),
        f'<a href="{_href("/runs/" + run)}"><code>{_e(run[:12])}</code></a>' if run else "none",
        _e(side["created"]),
        _e(" <- ".join(side["lineage"])),
        _e("not recorded" if side["data"] is None else f"{len(side['data'])} file(s)"),
    ]


def _change(value: object) -> str:
    return f"{value:+.4g}" if isinstance(value, float) else "-"


def comparison(data: Mapping[str, Any]) -> str:
    a, b = data["champion"], data["challenger"]
    parts = [
        _table(
            ["", "version", "run", "registered", "lineage", "training data"],
            [_side_head(a), _side_head(b)],
        ),
        "<h2>Metrics</h2>",
    ]
    dash = '<span class="muted">-</span>'
    metrics = [
        [_e(m["name"]), _num(m["champion"]) if m["champion"] is not None else dash]
        + [_num(m["challenger"]) if m["challenger"] is not None else dash, _change(m["change"])]
        for m in data["metrics"]
    ]
    parts.append(_table(["metric", "champion", "challenger", "change"], metrics))
    parts.append("<h2>Parameters</h2>")
    params = [
        [
            _e(p["name"])
            + ("" if p["champion"] == p["challenger"] else " <strong>differs</strong>"),
            _e(p["champion"]) if p["champion"] is not None else dash,
            _e(p["challenger"]) if p["challenger"] is not None else dash,
        ]
        for p in data["params"]
    ]
    parts.append(_table(["parameter", "champion", "challenger"], params))
    parts.append("<h2>Training data</h2>")
    split = data["data"]
    if split is None:
        parts.append('<p class="muted">Not recorded for at least one of the two versions.</p>')
    else:
        parts.append(
            _table(
                ["used by", "files"],
                [
                    [
                        _e(who),
                        _e(len(split[key]))
                        + "".join(f"<br><code>{_e(k)}</code>" for k in split[key][:50]),
                    ]
                    for who, key in (
                        ("both", "both"),
                        ("the champion only", "champion"),
                        ("the challenger only", "challenger"),
                    )
                ],
            )
        )
    parts.append("<h2>Plots</h2>")
    if not data["plots"]:
        parts.append('<p class="muted">Neither run has plot artifacts.</p>')
    rows = []
    for plot in data["plots"]:
        cells = [f"<code>{_e(plot['path'])}</code>"]
        for side in (a, b):
            link = side["plot_links"].get(plot["path"])
            cells.append(
                f'<img src="{_href(link)}" alt="{_e(side["role"])} {_e(plot["path"])}" width="480">'
                if link
                else dash
            )
        rows.append(cells)
    if rows:
        parts.append(_table(["plot", "champion", "challenger"], rows))
    return "".join(parts)


def monitor(data: Mapping[str, Any]) -> str:
    """The erosion monitor of a model: per monitor run (experiment), each figure by batch
    time with its threshold line."""
    parts = [
        f'<p>Model <a href="{_href("/models/" + data["name"])}">{_e(data["name"])}</a>: '
        "the error of each inference batch against its truth (rmse, mae) and the drift of "
        "its inputs from the training data (psi_max, the largest population stability index "
        "of the features), by batch time; the dashed line is the threshold above which a "
        "retrain is triggered.</p>"
    ]
    if not data["runs"]:
        parts.append('<p class="muted">No batch evaluated yet.</p>')
    for run in data["runs"]:
        link = (
            f'<a href="{_href("/runs/" + run["run_id"])}"><code>{_e(run["run_id"][:12])}</code></a>'
        )
        parts.append(f"<h2>Experiment {_e(run['experiment'])}</h2><p>Monitor run {link}</p>")
        rows = [
            [_e(f), _num(v), _num(run["thresholds"][f]) if f in run["thresholds"] else "none"]
            for f, v in run["latest"].items()
        ]
        parts.append(_table(["figure", "latest", "threshold"], rows))
        for plot in run["plots"]:
            figure = plot.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            parts.append(
                f'<figure><img src="{_href(plot)}" alt="{_e(figure)} by batch time" '
                f'width="640" height="360"><figcaption>{_e(figure)} by batch time '
                f'(<a href="{_href(plot[:-4] + ".svg")}">SVG</a>)</figcaption></figure>'
            )
    return "".join(parts)


def error(status: int, message: str) -> str:
    return f"<p>{_e(status)}: {_e(message)}</p>"
