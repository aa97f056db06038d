"""Small server-rendered SVG charts (no JavaScript library): lines with an optional band.

Every chart carries a <title> and an aria-label, and the page shows the same numbers in a
table, so nothing depends on seeing the colours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 12, 12, 26


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]  # (x, y)
    css_class: str  # colour comes from the stylesheet; the legend names it in words
    dashed: bool = False


@dataclass(frozen=True)
class Band:
    label: str
    points: Sequence[tuple[float, float, float]]  # (x, low, high)
    css_class: str


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    if high <= low:
        return [low]
    step = (high - low) / count
    return [low + i * step for i in range(count + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 1:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    band: Band | None = None,
    x_labels: tuple[str, str] = ("", ""),
    zero_line: bool = False,
) -> SafeString:
    """An inline SVG line chart of `series` (and a shaded `band`), scaled to fit."""
    xs = [x for s in series for x, _ in s.points] + [x for x, _, _ in (band.points if band else [])]
    ys = [y for s in series for _, y in s.points]
    if band is not None:
        ys += [v for _, low, high in band.points for v in (low, high)]
    ys = [y for y in ys if math.isfinite(y)]
    if not xs or not ys:
        return mark_safe(  # noqa: S308 - escaped title, fixed markup
            f'<p class="chart-empty">{escape(title)}: no data yet.</p>'
        )
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys + ([0.0] if zero_line else [])), max(ys + ([0.0] if zero_line else []))
    if y_high == y_low:
        y_high, y_low = y_high + 1, y_low - 1
    margin = (y_high - y_low) * 0.05
    y_low, y_high = y_low - margin, y_high + margin
    plot_w = WIDTH - PAD_LEFT - PAD_RIGHT
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM

    def sx(x: float) -> float:
        return PAD_LEFT + (0.5 if x_high == x_low else (x - x_low) / (x_high - x_low)) * plot_w

    def sy(y: float) -> float:
        return PAD_TOP + (1 - (y - y_low) / (y_high - y_low)) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in _ticks(y_low, y_high):
        y = sy(tick)
        parts.append(
            f'<line class="grid" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}"/><text class="tick" x="{PAD_LEFT - 4}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(_fmt(tick))}</text>'
        )
    if zero_line and y_low < 0 < y_high:
        parts.append(
            f'<line class="zero" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{sy(0):.1f}" y2="{sy(0):.1f}"/>'
        )
    if band is not None and band.points:
        upper = " ".join(f"{sx(x):.1f},{sy(high):.1f}" for x, _, high in band.points)
        lower = " ".join(f"{sx(x):.1f},{sy(low):.1f}" for x, low, _ in reversed(band.points))
        parts.append(
            f'<polygon class="{escape(band.css_class)}" points="{upper} {lower}">'
            f"<title>{escape(band.label)}</title></polygon>"
        )
    for item in series:
        finite = [(x, y) for x, y in item.points if math.isfinite(y)]
        if not finite:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in finite)
        dash = ' stroke-dasharray="5 4"' if item.dashed else ""
        parts.append(
            f'<polyline class="{escape(item.css_class)}" fill="none" points="{path}"{dash}>'
            f"<title>{escape(item.label)}</title></polyline>"
        )
    parts.append(
        f'<text class="tick" x="{PAD_LEFT}" y="{HEIGHT - 6}">{escape(x_labels[0])}</text>'
        f'<text class="tick" x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end">'
        f"{escape(x_labels[1])}</text></svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped
