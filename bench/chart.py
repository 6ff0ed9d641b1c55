"""A small hand-written SVG line chart: time against number of entries, both on log scales."""

from __future__ import annotations

import math
from html import escape

WIDTH, HEIGHT = 640, 380
LEFT, RIGHT, TOP, BOTTOM = 70, 190, 40, 50
COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")


def _decades(low: float, high: float) -> list[float]:
    start, stop = math.floor(math.log10(low)), math.ceil(math.log10(high))
    return [10.0**e for e in range(start, stop + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if value < 10_000 else f"{value:.0e}"


def svg(
    sizes: list[int],
    series: dict[str, list[float]],
    title: str,
    x_label: str = "entries in the tree",
    y_label: str = "time to signal, ms (median)",
) -> str:
    """Lines of ``series`` (name -> milliseconds per size) over ``sizes`` entries."""
    values = [v for line in series.values() for v in line if v > 0]
    y_ticks = _decades(min(values), max(values))
    x_ticks = _decades(min(sizes), max(sizes))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(n: float) -> float:
        lo, hi = math.log10(x_ticks[0]), math.log10(x_ticks[-1])
        return LEFT + (math.log10(n) - lo) / (hi - lo or 1) * plot_w

    def y(ms: float) -> float:
        lo, hi = math.log10(y_ticks[0]), math.log10(y_ticks[-1])
        return TOP + plot_h - (math.log10(max(ms, y_ticks[0])) - lo) / (hi - lo or 1) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="20" text-anchor="middle" font-size="13">{escape(title)}</text>',
    ]
    for tick in x_ticks:
        out.append(f'<line x1="{x(tick):.1f}" y1="{TOP}" x2="{x(tick):.1f}" y2="{TOP + plot_h}" stroke="#ddd"/>')
        out.append(f'<text x="{x(tick):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{_label(tick)}</text>')
    for tick in y_ticks:
        out.append(f'<line x1="{LEFT}" y1="{y(tick):.1f}" x2="{LEFT + plot_w}" y2="{y(tick):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y(tick) + 4:.1f}" text-anchor="end">{_label(tick)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 12}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(
        f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    for index, (name, line) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points = " ".join(f"{x(n):.1f},{y(ms):.1f}" for n, ms in zip(sizes, line, strict=True))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out.extend(
            f'<circle cx="{x(n):.1f}" cy="{y(ms):.1f}" r="3" fill="{colour}"/>'
            for n, ms in zip(sizes, line, strict=True)
        )
        legend_y = TOP + 14 + index * 20
        out.append(
            f'<line x1="{LEFT + plot_w + 12}" y1="{legend_y - 4}" x2="{LEFT + plot_w + 32}" y2="{legend_y - 4}" '
            f'stroke="{colour}" stroke-width="2"/>'
        )
        out.append(f'<text x="{LEFT + plot_w + 38}" y="{legend_y}">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
