"""Charts as inline SVG, drawn on the server: per-day bars (stacked series) and horizontal bars.

Pure functions returning markup; colours come from CSS classes (`series-0` ...), so the page's stylesheet
decides them and a high-contrast theme can change them. Every chart has a <title> and <desc> for screen
readers, and the pages print the same figures in a table next to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
HEIGHT = 220
MARGIN_LEFT = 48
MARGIN_BOTTOM = 36
MARGIN_TOP = 12


@dataclass(frozen=True)
class Series:
    """One named row of values, one value per label."""

    name: str
    values: Sequence[float]


def nice_top(value: float) -> float:
    """A round axis maximum at or above `value` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _plain(value: float) -> str:
    return f"{value:g}"


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Callable[[float], str] = _plain,
    chart_id: str = "chart",
) -> str:
    """Stacked vertical bars, one per label (a day); an empty chart says so."""
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = nice_top(max(totals, default=0.0))
    if all(float(v).is_integer() for s in series for v in s.values):
        top = max(top, 4.0)  # counts: whole-number grid lines
    plot_w, plot_h = WIDTH - MARGIN_LEFT - 8, HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    slot = plot_w / max(len(labels), 1)
    parts = [_open(title, chart_id, _describe(labels, series, fmt)), *_axis(top, plot_w, plot_h, fmt)]
    for i, label in enumerate(labels):
        x = MARGIN_LEFT + i * slot + slot * 0.15
        base = float(MARGIN_TOP + plot_h)
        for k, s in enumerate(series):
            height = plot_h * s.values[i] / top
            if height > 0:
                parts.append(f'<rect class="series-{k}" x="{x:.1f}" y="{base - height:.1f}" '
                             f'width="{slot * 0.7:.1f}" height="{height:.1f}">'
                             f"<title>{escape(label)} {escape(s.name)}: "
                             f"{escape(fmt(s.values[i]))}</title></rect>")
                base -= height
        if _label_shown(i, len(labels)):
            parts.append(f'<text class="tick" x="{x + slot * 0.35:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
                         f'text-anchor="middle">{escape(label[-5:])}</text>')
    parts.append(_legend(series))
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(title: str, items: Sequence[tuple[str, float]], *, chart_id: str = "hchart") -> str:
    """Horizontal bars, one per item (e.g. how many callers pressed each key)."""
    row = 28
    height = MARGIN_TOP + row * max(len(items), 1) + 8
    top = max(nice_top(max((v for _, v in items), default=0.0)), 4.0)
    desc = "; ".join(f"{name}: {_plain(value)}" for name, value in items) or "no data"
    parts = [_open(title, chart_id, desc, height)]
    for i, (name, value) in enumerate(items):
        y = MARGIN_TOP + i * row
        width = (WIDTH - MARGIN_LEFT - 60) * value / top
        parts.append(f'<text class="tick" x="{MARGIN_LEFT - 8}" y="{y + 17}" text-anchor="end">'
                     f"{escape(name)}</text>")
        parts.append(f'<rect class="series-{i % 6}" x="{MARGIN_LEFT}" y="{y + 4}" width="{width:.1f}" '
                     f'height="{row - 8}"/>')
        parts.append(f'<text class="value" x="{MARGIN_LEFT + width + 6:.1f}" y="{y + 17}">'
                     f"{escape(_plain(value))}</text>")
    if not items:
        parts.append(f'<text class="tick" x="{MARGIN_LEFT}" y="{MARGIN_TOP + 17}">No data</text>')
    parts.append("</svg>")
    return "".join(parts)


def _open(title: str, chart_id: str, desc: str, height: int = HEIGHT) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-labelledby="{chart_id}-t {chart_id}-d" preserveAspectRatio="xMinYMin meet">'
            f'<title id="{chart_id}-t">{escape(title)}</title><desc id="{chart_id}-d">{escape(desc)}</desc>')


def _axis(top: float, plot_w: float, plot_h: float, fmt: Callable[[float], str]) -> list[str]:
    lines = []
    for step in range(5):
        value = top * step / 4
        y = MARGIN_TOP + plot_h - plot_h * step / 4
        lines.append(f'<line class="grid" x1="{MARGIN_LEFT}" x2="{MARGIN_LEFT + plot_w:.1f}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/>')
        lines.append(f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{escape(fmt(value))}</text>")
    return lines


def _legend(series: Sequence[Series]) -> str:
    items: list[str] = []
    x = float(MARGIN_LEFT)
    for k, s in enumerate(series):
        items.append(f'<rect class="series-{k}" x="{x}" y="{HEIGHT - 14}" width="10" height="10"/>'
                     f'<text class="tick" x="{x + 14}" y="{HEIGHT - 5}">{escape(s.name)}</text>')
        x += 24 + 8 * len(s.name)
    return "".join(items)


def _label_shown(index: int, count: int) -> bool:
    """Every label when they fit, else about eight evenly spaced ones and the last."""
    step = max(1, math.ceil(count / 8))
    return index % step == 0 or index == count - 1


def _describe(labels: Sequence[str], series: Sequence[Series], fmt: Callable[[float], str]) -> str:
    if not labels:
        return "no data"
    totals = {s.name: fmt(sum(s.values)) for s in series}
    return f"{labels[0]} to {labels[-1]}; totals " + ", ".join(f"{k} {v}" for k, v in totals.items())
