"""A :class:`~mlpipe.tasks.compare.Comparison` as plain text or as Markdown.

The Markdown is the one for a pull-request comment: a heading naming both versions,
then tables of metrics (with the change), parameters (the differing ones marked),
the data each was trained on, and the plots side by side. ``images`` gives the link of
a plot (champion's or challenger's) to embed; without it plots are named, not shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mlpipe.tasks.compare import CHALLENGER, CHAMPION, Comparison, Side

ImageLink = Callable[[Side, str], str]
MAX_FILES = 50  # data files listed per group; the rest are counted


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _change(value: float | None) -> str:
    return "-" if value is None else f"{value:+.6g}"


def _head(item: Side) -> str:
    run = f"run {item.run_id}" if item.run_id else "no run"
    return f"{item.ref} = version {item.version} ({run}, registered {item.created or '?'})"


def _files(keys: Sequence[str]) -> list[str]:
    shown = list(keys[:MAX_FILES])
    if len(keys) > MAX_FILES:
        shown.append(f"... and {len(keys) - MAX_FILES} more")
    return shown


def _data_lines(item: Side) -> str:
    if item.data is None:
        return f"{item.role}: no data.json recorded in run {item.run_id or '(none)'}"
    return f"{item.role}: {len(item.data)} file(s), lineage {' <- '.join(item.lineage)}"


def text(c: Comparison) -> str:
    """The comparison for a terminal."""
    a, b = c.champion, c.challenger
    out = [f"champion   {_head(a)}", f"challenger {_head(b)}", ""]
    rows = [("metric", CHAMPION, CHALLENGER, "change")]
    rows += [(k, _num(x), _num(y), _change(d)) for k, x, y, d in c.metrics()]
    out += _columns(rows) + [""]
    rows = [("parameter", CHAMPION, CHALLENGER, "")]
    rows += [(k, x or "-", y or "-", "" if x == y else "differs") for k, x, y in c.params()]
    out += _columns(rows) + ["", "data"]
    out += [f"  {_data_lines(a)}", f"  {_data_lines(b)}"]
    split = c.data()
    if split is not None:
        out.append(f"  used by both: {len(split['both'])} file(s)")
        for role in (CHAMPION, CHALLENGER):
            out.append(f"  only the {role}'s: {len(split[role])} file(s)")
            out += [f"    {k}" for k in _files(split[role])]
    out += ["", "plots"]
    plots = c.plots()
    if not plots:
        out.append("  neither run has plot artifacts")
    for path, x, y in plots:
        out.append(f"  {path}: {'champion' if x else '-'} / {'challenger' if y else '-'}")
    return "\n".join(out) + "\n"


def _columns(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows
    ]


def _md(value: str) -> str:
    """A table cell: pipes escaped, no line breaks."""
    return " ".join(value.replace("\\", "\\\\").replace("|", "\\|").split()) or " "


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell for cell in row) + " |" for row in rows]
    return lines


def markdown(c: Comparison, images: ImageLink | None = None) -> str:
    """The comparison as Markdown (a pull-request comment, a report file)."""
    a, b = c.champion, c.challenger
    out = [
        f"## Model comparison: {_md(a.label)} vs {_md(b.label)}",
        "",
        f"- **champion**: `{a.ref}` = version {a.version}"
        + (f", run `{a.run_id}`" if a.run_id else ", no run"),
        f"- **challenger**: `{b.ref}` = version {b.version}"
        + (f", run `{b.run_id}`" if b.run_id else ", no run"),
        "",
        "### Metrics",
        "",
    ]
    metrics = c.metrics()
    if metrics:
        out += _md_table(
            ["metric", CHAMPION, CHALLENGER, "change"],
            [[f"`{_md(k)}`", _num(x), _num(y), _change(d)] for k, x, y, d in metrics],
        )
    else:
        out.append("Neither run has metrics.")
    out += ["", "### Parameters", ""]
    params = c.params()
    if params:
        out += _md_table(
            ["parameter", CHAMPION, CHALLENGER],
            [
                [f"`{_md(k)}`" + ("" if x == y else " **(differs)**"), _md(x or "-"), _md(y or "-")]
                for k, x, y in params
            ],
        )
    else:
        out.append("Neither run has parameters.")
    out += ["", "### Data", "", f"- {_md(_data_lines(a))}", f"- {_md(_data_lines(b))}"]
    split = c.data()
    if split is not None:
        out.append(f"- used by both: {len(split['both'])} file(s)")
        for role in (CHAMPION, CHALLENGER):
            keys = _files(split[role])
            listed = ", ".join(f"`{_md(k)}`" for k in keys)
            out.append(
                f"- only the {role}'s: {len(split[role])} file(s)" + (f": {listed}" if keys else "")
            )
    out += ["", "### Plots", ""]
    plots = c.plots()
    if not plots:
        out.append("Neither run has plot artifacts.")
    else:
        rows = []
        for path, x, y in plots:
            cells = [f"`{_md(path)}`"]
            for has, item in ((x, a), (y, b)):
                if not has:
                    cells.append("-")
                elif images is None:
                    cells.append("yes")
                else:
                    cells.append(f"![{_md(item.role)} {_md(path)}]({images(item, path)})")
            rows.append(cells)
        out += _md_table(["plot", CHAMPION, CHALLENGER], rows)
    return "\n".join(out) + "\n"
