"""The confidence histogram as inline SVG: ten bars, the review threshold drawn across them.

Bars of bins wholly below the threshold are painted in the warning colour, so the share of rows
that will be listed for review is visible at a glance. Coordinates are whole pixels and bars
use crisp edges: the colours stay exact (the browser test counts them).
"""

from __future__ import annotations

from html import escape

from .assets import COLOURS
from .facts import Histogram

__all__ = ["histogram_svg"]

_W, _H = 560, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 34, 12, 20, 36


def histogram_svg(h: Histogram) -> str:
    """The histogram of `h` as an `<svg>` element."""
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    step = plot_w // 10
    peak = max(h.bins) or 1
    base = _TOP + plot_h
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" role="img" '
        f'aria-label="{escape(_summary(h))}">',
        f'<line x1="{_LEFT}" y1="{base}" x2="{_LEFT + step * 10}" y2="{base}" '
        'stroke="#9aa3b2" stroke-width="1"/>',
        f'<text x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{peak:,}</text>',
        f'<text x="{_LEFT - 6}" y="{base}" text-anchor="end">0</text>',
    ]
    for i, n in enumerate(h.bins):
        x = _LEFT + i * step
        low = (i + 1) / 10 <= h.threshold + 1e-9
        colour = COLOURS["bar-low"] if low else COLOURS["bar"]
        height = round(plot_h * n / peak)
        label = f"{i / 10:.1f}\u2013{(i + 1) / 10:.1f}: {n:,} row{'' if n == 1 else 's'}"
        if n:
            parts.append(
                f'<rect class="{"bar-low" if low else "bar"}" data-bin="{i}" data-count="{n}" '
                f'x="{x + 3}" y="{base - height}" width="{step - 6}" height="{height}" '
                f'fill="{colour}" shape-rendering="crispEdges"><title>{escape(label)}</title>'
                "</rect>"
            )
            parts.append(
                f'<text class="count" x="{x + step // 2}" y="{base - height - 4}" '
                f'text-anchor="middle">{n:,}</text>'
            )
    for i in range(11):
        parts.append(
            f'<text x="{_LEFT + i * step}" y="{base + 14}" text-anchor="middle">{i / 10:.1f}</text>'
        )
    tx = _LEFT + round(step * 10 * min(max(h.threshold, 0.0), 1.0))
    parts.append(
        f'<line x1="{tx}" y1="{_TOP - 8}" x2="{tx}" y2="{base}" stroke="#b3261e" '
        'stroke-width="1.5" stroke-dasharray="4 3"/>'
    )
    parts.append(
        f'<text class="thr" x="{tx}" y="{_TOP - 10}" text-anchor="middle">'
        f"review below {h.threshold:g}</text>"
    )
    parts.append(
        f'<text x="{_LEFT + step * 5}" y="{_H - 4}" text-anchor="middle">'
        "lowest confidence of the row's values</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _summary(h: Histogram) -> str:
    return (
        f"Lowest value confidence of {h.total:,} rows in ten bins; {h.below:,} below "
        f"{h.threshold:g}"
    )
