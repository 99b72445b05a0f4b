"""A bar chart's geometry, drawn by the template as inline SVG: no script, no
external asset, readable at any width (the SVG scales with its viewBox)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class AxisLabel:
    x: float
    label: str
    anchor: str = "middle"  # SVG text-anchor: the last label ends at the right edge


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bars: list[Bar]
    ticks: list[Tick]
    labels: list[AxisLabel]
    total: int
    peak: int


def nice_ceiling(value: int, steps: int = 4) -> tuple[int, int]:
    """An axis top at or above `value` with `steps` round steps: (top, step)."""
    if value <= 0:
        return steps, 1
    raw = value / steps
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return step * steps, step


def bar_chart(
    points: Sequence[tuple[str, str, int]],
    width: int = 720,
    height: int = 240,
    label_every: int = 5,
) -> BarChart:
    """`points` are (axis label, full label, value), left to right."""
    left, right, top, bottom = 44.0, width - 8.0, 12.0, height - 28.0
    peak = max((value for _, _, value in points), default=0)
    axis_top, step = nice_ceiling(peak)
    plot_height = bottom - top
    slot = (right - left) / max(1, len(points))
    gap = min(4.0, slot * 0.2)
    bars = []
    labels = []
    for n, (short, full, value) in enumerate(points):
        bar_height = plot_height * value / axis_top
        x = left + n * slot + gap / 2
        bars.append(Bar(x, bottom - bar_height, slot - gap, bar_height, full, value))
        if n == len(points) - 1:
            labels.append(AxisLabel(x + slot - gap, short, "end"))
        elif n % label_every == 0 and n < len(points) - 2:
            labels.append(AxisLabel(x + (slot - gap) / 2, short))
    ticks = [
        Tick(bottom - plot_height * v / axis_top, str(v)) for v in range(0, axis_top + 1, step)
    ]
    return BarChart(
        width,
        height,
        left,
        right,
        top,
        bottom,
        bars,
        ticks,
        labels,
        total=sum(value for _, _, value in points),
        peak=peak,
    )


MIN_BAR = 3.0  # the narrowest bar drawn for a count above nothing
NARROW_CHART_WIDTH = 360  # a chart's width for a phone, in its own units: about its CSS pixels


@dataclass(frozen=True)
class CountBar:
    y: float
    width: float
    label: str
    value: int
    css: str  # the bar's class: "bar" or "bar suppressed"


@dataclass(frozen=True)
class CountChart:
    """Horizontal bars, one a row, each labelled on its left and counted on its right."""

    width: int
    height: int
    left: float
    row: float
    thickness: float
    bars: list[CountBar]
    peak: int


def count_chart(
    points: Sequence[tuple[str, int, str]], width: int = 720, row: float = 30.0
) -> CountChart:
    """`points` are (label, value, css class), top to bottom."""
    # Room for the longest reason code on the left and a count on the right.
    left, right_room = (170.0, 90.0) if width > NARROW_CHART_WIDTH else (120.0, 64.0)
    peak = max((value for _, value, _ in points), default=0)
    room = width - left - right_room
    bars = [
        CountBar(
            y=n * row + 6,
            # A count too small to show at this scale still shows as a sliver.
            width=max(MIN_BAR, room * value / peak) if value else 0.0,
            label=label,
            value=value,
            css=css,
        )
        for n, (label, value, css) in enumerate(points)
    ]
    return CountChart(width, int(row * len(points) + 12), left, row, row - 10, bars, peak)
