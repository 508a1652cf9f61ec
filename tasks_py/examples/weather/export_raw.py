"""Write the example raw data: vega_datasets' seattle-weather, one CSV per year.

The observations (Seattle, 2012-2015, from NOAA via the vega datasets) ship
offline inside the ``vega_datasets`` package, which only this script needs (it
is no dependency of mlpipe: ``raw/`` is committed). Usage::

    pip install vega_datasets==0.9.0
    python export_raw.py [OUT_DIR]      # default: raw/ next to this file
"""

from __future__ import annotations

import sys
from pathlib import Path


def export(out_dir: Path) -> list[Path]:
    try:
        from vega_datasets import data
    except ImportError:
        sys.exit("export_raw.py needs the vega_datasets package: pip install vega_datasets==0.9.0")
    frame = data.seattle_weather()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for year, rows in frame.groupby(frame["date"].dt.year):
        path = out_dir / f"seattle-{year}.csv"
        rows.assign(date=rows["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "raw"
    for path in export(target):
        print(path)
