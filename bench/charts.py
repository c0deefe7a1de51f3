"""The performance page's charts, drawn from the benchmarks' saved results (``bench/results/<name>.json``).

``python -m bench.charts`` writes one SVG per chart into ``docs/charts/``. The SVG is written by hand, not by
matplotlib, so a chart depends only on the JSON it is drawn from (the same JSON gives the same bytes, and a test
checks the committed charts against the committed results) and the docs need no plotting library.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CHARTS = ROOT / "docs" / "charts"

_WIDTH, _LABEL_WIDTH, _ROW, _TOP, _BOTTOM = 760, 250, 30, 56, 30
_BAR, _MARK, _TEXT = "#3f6fb5", "#c0392b", "#222222"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str  # printed at the bar's end


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str
    bars: tuple[Bar, ...]
    marks: tuple[tuple[float, str], ...]  # vertical lines: (value, label)
    top: float  # the axis's end


def load(name: str, results: Path = RESULTS) -> dict[str, Any]:
    figures: dict[str, Any] = json.loads((results / f"{name}.json").read_text(encoding="utf-8"))["figures"]
    return figures


def throttle_chart(figures: dict[str, Any]) -> Chart:
    """Identity searches per second each client achieved, against the limit and the connector's target."""
    limit, share = float(figures["limit_per_s"]), float(figures["target_share"])
    bars = tuple(Bar(row["scenario"], float(row["identity_rate_per_s"]),
                     f"{row['identity_rate_per_s']}/s, {row['http_429']} HTTP 429") for row in figures["rows"])
    return Chart("Throttle: identity searches per second (1,000 opt-outs each)", "calls per second", bars,
                 ((limit * share, f"target: {share:g} of the limit"), (limit, f"limit {limit:g}/s")), limit * 1.25)


def polling_chart(figures: dict[str, Any]) -> Chart:
    """Status calls until completion, per request type, duration and lateness."""
    bars = []
    for row in figures["rows"]:
        late = f", {_days(row['late_days'])} late" if row["late_days"] else ", on time"
        label = f"{row['type']} taking {_days(row['takes_days'])}{late}"
        bars.append(Bar(label, float(row["status_calls"]), f"{row['status_calls']} calls"))
    cap = float(figures["max_on_time_status_calls"])
    top = max(bar.value for bar in bars) * 1.2
    return Chart("Polling: status calls until a request completes", "status calls", tuple(bars),
                 ((cap, f"target: ≤ {cap:g} on time"),), top)


def _days(count: float) -> str:
    return f"{count:g} day" + ("" if count == 1 else "s")


def memory_chart(download: dict[str, Any], hostile: dict[str, Any]) -> Chart:
    """Peak memory growth while reading results, against the 50 MB target."""
    bars = (Bar(f"download: {download['results_mb']:g} MB results file", float(download["peak_rss_growth_mb"]),
                f"+{download['peak_rss_growth_mb']} MB ({download['mb_per_s']} MB/s)"),
            Bar(f"hostile: one {hostile['line_mb']:g} MB line", float(hostile["peak_rss_growth_mb"]),
                f"+{hostile['peak_rss_growth_mb']} MB (refused in {hostile['call_s']} s)"))
    target = float(download["target_growth_mb"])
    return Chart("Download: peak memory growth while reading results", "MB of peak RSS growth", bars,
                 ((target, f"target ≤ {target:g} MB"),), target * 1.3)


def svg(chart: Chart) -> str:
    """The chart as a standalone SVG: one horizontal bar per row, the marks as dashed vertical lines."""
    plot = _WIDTH - _LABEL_WIDTH - 20
    height = _TOP + _ROW * len(chart.bars) + _BOTTOM

    def x(value: float) -> float:
        return round(_LABEL_WIDTH + plot * min(value, chart.top) / chart.top, 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" '
             f'viewBox="0 0 {_WIDTH} {height}" font-family="sans-serif" font-size="12" role="img">\n',
             f"<title>{escape(chart.title)}</title>\n",
             f'<rect width="{_WIDTH}" height="{height}" fill="white"/>\n',
             f'<text x="10" y="22" font-size="15" fill="{_TEXT}">{escape(chart.title)}</text>\n',
             *_marks(chart, x, height)]
    for index, bar in enumerate(chart.bars):
        y = _TOP + _ROW * index
        parts += [f'<text x="{_LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end" fill="{_TEXT}">'
                  f"{escape(bar.label)}</text>\n",
                  f'<rect x="{_LABEL_WIDTH}" y="{y + 3}" width="{x(bar.value) - _LABEL_WIDTH}" height="18" '
                  f'fill="{_BAR}"/>\n',
                  f'<text x="{x(bar.value) + 5}" y="{y + 16}" fill="{_TEXT}">{escape(bar.note)}</text>\n']
    parts.append(f'<text x="{_LABEL_WIDTH}" y="{height - 8}" fill="{_TEXT}">{escape(chart.unit)} '
                 f"(axis from 0 to {chart.top:g})</text>\n</svg>\n")
    return "".join(parts)


def _marks(chart: Chart, x: Callable[[float], float], height: int) -> list[str]:
    """Dashed lines, drawn before the bars and their notes, each labelled above the plot: the first to the
    line's left, the next to its right, so two close lines keep their labels apart."""
    lines = []
    for index, (value, label) in enumerate(chart.marks):
        anchor, shift = ("end", -4) if index % 2 == 0 else ("start", 4)
        lines += [f'<line x1="{x(value)}" y1="{_TOP - 2}" x2="{x(value)}" y2="{height - _BOTTOM + 4}" '
                  f'stroke="{_MARK}" stroke-dasharray="5,4"/>\n',
                  f'<text x="{x(value) + shift}" y="{_TOP - 6}" text-anchor="{anchor}" '
                  f'fill="{_MARK}">{escape(label)}</text>\n']
    return lines


def charts(results: Path = RESULTS) -> dict[str, str]:
    """Every chart's file name and SVG text, from the saved results in ``results``."""
    return {
        "throttle.svg": svg(throttle_chart(load("throttle", results))),
        "polling.svg": svg(polling_chart(load("polling", results))),
        "download-memory.svg": svg(memory_chart(load("download", results), load("hostile_download", results))),
    }


def main() -> int:
    CHARTS.mkdir(exist_ok=True)
    for name, text in charts().items():
        (CHARTS / name).write_text(text, encoding="utf-8")
        print(f"wrote docs/charts/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
