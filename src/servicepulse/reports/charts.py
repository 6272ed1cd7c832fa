"""Small vector (SVG) charts for the PDF. One palette, readable in greyscale:
the series is a solid dark line with point markers, the target a dashed mid-grey
line, so neither depends on colour."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

SERIES_COLOUR = "#1f4e79"
TARGET_COLOUR = "#8c8c8c"
GRID_COLOUR = "#d9d9d9"
AXIS_TEXT = "#595959"


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round axis values covering [low, high]: about ``count`` multiples of 1, 2, 2.5 or
    5 × 10^k, as a reader would draw them."""
    span = high - low
    if span <= 0:
        return [low]
    rough = span / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(rough))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= rough)
    first = math.ceil(low / step - 1e-9) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    return ticks


Bounds = tuple[float | None, float | None]


def value_range(values: list[float | None], target: float | None,
                bounds: Bounds = (None, None)) -> tuple[float, float]:
    """The y-range a chart of ``values`` (and its target) needs: padded so no point sits
    on the frame, never past what the unit can take (``bounds``: a rate is 0-100 %, a
    count not below 0), widened outward to round ticks; charts that share a scale take
    the union of theirs."""
    known = [v for v in values if v is not None] + ([target] if target is not None else [])
    low, high = min(known), max(known)
    span = high - low
    # A flat line (or one flat but for float noise) gets a visible band around it.
    flat = span <= 1e-9 * max(1.0, abs(high))
    pad = max(abs(high) * 0.05, 1.0) if flat else span * 0.12
    low, high = _within(low - pad, high + pad, bounds)
    ticks = nice_ticks(low, high)
    if len(ticks) >= 2 and ticks[1] > ticks[0]:
        step = ticks[1] - ticks[0]
        low = math.floor(low / step + 1e-9) * step
        high = math.ceil(high / step - 1e-9) * step
    return _within(low, high, bounds)


def _within(low: float, high: float, bounds: Bounds) -> tuple[float, float]:
    floor, ceiling = bounds
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    return low, high


def trend_svg(values: list[float | None], labels: list[str], target: float | None,
              target_label: str,
              format_number: Callable[[float, int], str] = lambda v, d: f"{v:.{d}f}",
              decimals: int = 1, unit_label: str = "", scale: tuple[float, float] | None = None,
              bounds: Bounds = (None, None),
              width: int = 300, height: int = 112, empty_label: str = "") -> str:
    """A line chart of ``values`` (None leaves a gap) that can be read without the table:
    value axis with round ticks and the unit (``unit_label``) above it, the target line
    labelled with its value, the latest point labelled with its value (both with
    ``decimals``, through ``format_number`` for the locale), the first and last period on
    the time axis. ``scale`` (low, high) fixes the value axis, so charts of like
    KPIs are drawn to one scale; without it the chart fits its own values. With no value
    at all, a frame that says ``empty_label`` rather than a blank box."""
    known = [v for v in values if v is not None]
    if not known:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                f'viewBox="0 0 {width} {height}" font-size="9">'
                f'<rect x="4" y="6" width="{width - 8}" height="{height - 22}" fill="none" '
                f'stroke="{GRID_COLOUR}" stroke-width="0.8" stroke-dasharray="3 3"/>'
                f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
                f'fill="#595959">{escape(empty_label)}</text></svg>')
    low, high = scale or value_range(values, target, bounds)
    ticks = [v for v in nice_ticks(low, high) if low <= v <= high]
    # As few decimals as say every tick exactly (92.5 needs one, 90 none).
    tick_decimals = next((d for d in range(4)
                          if all(abs(round(v, d) - v) < 1e-9 for v in ticks)), 3)
    tick_texts = [format_number(v, tick_decimals) for v in ticks]

    def format_value(value: float) -> str:
        return format_number(value, decimals)

    # The value axis is as wide as its longest label (about 4.6 px per character at 8 px).
    left = 6 + 4.6 * max([len(text) for text in tick_texts] + [len(unit_label), 2])
    # Room on the right for the latest value, written beside its point.
    right, top, bottom = width - 6 - 4.6 * (len(format_value(known[-1])) + 1), 14, height - 16
    step = (right - left) / max(1, len(values) - 1)

    def y(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    def x(index: int) -> float:
        return left + index * step

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" font-size="8">')]
    if unit_label:
        parts.append(f'<text x="{left - 4:.1f}" y="{top - 6}" text-anchor="end" '
                     f'fill="{AXIS_TEXT}">{escape(unit_label)}</text>')
    for value, text in zip(ticks, tick_texts):
        ty = y(value)
        parts.append(f'<line x1="{left:.1f}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" '
                     f'stroke="{GRID_COLOUR}" stroke-width="0.5"/>')
        parts.append(f'<text x="{left - 4:.1f}" y="{ty + 2.8:.1f}" text-anchor="end" '
                     f'fill="{AXIS_TEXT}">{escape(text)}</text>')
    parts.append(f'<line x1="{left:.1f}" y1="{bottom}" x2="{right}" y2="{bottom}" '
                 f'stroke="{AXIS_TEXT}" stroke-width="0.6"/>')
    if target is not None:
        ty = y(target)
        parts.append(f'<line x1="{left:.1f}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" '
                     f'stroke="{TARGET_COLOUR}" stroke-width="1" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{left + 2:.1f}" y="{ty - 2:.1f}" text-anchor="start" '
                     f'fill="{TARGET_COLOUR}">{escape(target_label)} '
                     f'{escape(format_value(target))}</text>')
    segments: list[list[tuple[float, float]]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            segments.append([])
        else:
            segments[-1].append((x(index), y(value)))
    for points in (p for p in segments if p):
        parts.append(f'<polyline fill="none" stroke="{SERIES_COLOUR}" stroke-width="1.6" '
                     f'points="{" ".join(f"{px:.1f},{py:.1f}" for px, py in points)}"/>')
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="1.8" fill="{SERIES_COLOUR}"/>')
    # The latest value, written to the right of its point.
    last = max(i for i, v in enumerate(values) if v is not None)
    parts.append(f'<text x="{x(last) + 4:.1f}" y="{y(values[last]) + 2.8:.1f}" '
                 f'font-weight="bold" fill="{SERIES_COLOUR}">'
                 f'{escape(format_value(values[last]))}</text>')
    for index in (0, len(labels) - 1):
        anchor = "start" if index == 0 else "end"
        parts.append(f'<text x="{x(index):.1f}" y="{height - 4}" '
                     f'text-anchor="{anchor}" fill="{AXIS_TEXT}">{escape(labels[index])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_svg(value: float, largest: float, width: int = 110, height: int = 9) -> str:
    """One horizontal bar for a table cell, scaled to the table's largest value: the
    figure itself is the cell beside it, so the bar needs no text."""
    length = 0.0 if not largest else max(0.0, value) / largest * width
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}"><rect x="0" y="0" width="{length:.1f}" '
            f'height="{height}" fill="{SERIES_COLOUR}"/></svg>')


def matrix_svg(points: list[tuple[int, float, float]], frequency_threshold: float,
               impact_threshold: float, size: int = 210) -> str:
    """The complaint priority matrix: frequency share across, impact share up, the
    thresholds as dashed lines, each category a numbered marker (the number is its row
    in the table beside it). The fix-first quadrant (top right) is shaded."""
    margin = 14
    inner = size - 2 * margin
    high_frequency = max([f for _, f, _ in points] + [frequency_threshold * 2, 0.01])

    def x(share: float) -> float:
        return margin + min(share / high_frequency, 1.0) * inner

    def y(share: float) -> float:
        return size - margin - min(share, 1.0) * inner

    tx, ty = x(frequency_threshold), y(impact_threshold)
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
         f'viewBox="0 0 {size} {size}" font-size="8">'),
        (f'<rect x="{tx:.1f}" y="{margin}" width="{size - margin - tx:.1f}" '
         f'height="{ty - margin:.1f}" fill="#e8e8e8"/>'),
        (f'<rect x="{margin}" y="{margin}" width="{inner}" height="{inner}" fill="none" '
         f'stroke="{GRID_COLOUR}" stroke-width="0.8"/>'),
        (f'<line x1="{tx:.1f}" y1="{margin}" x2="{tx:.1f}" y2="{size - margin}" '
         f'stroke="{TARGET_COLOUR}" stroke-dasharray="4 3"/>'),
        (f'<line x1="{margin}" y1="{ty:.1f}" x2="{size - margin}" y2="{ty:.1f}" '
         f'stroke="{TARGET_COLOUR}" stroke-dasharray="4 3"/>'),
    ]
    for number, frequency, impact in points:
        cx, cy = x(frequency), y(impact)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{SERIES_COLOUR}"/>')
        parts.append(f'<text x="{cx:.1f}" y="{cy + 2.8:.1f}" text-anchor="middle" '
                     f'fill="#ffffff">{number}</text>')
    parts.append("</svg>")
    return "".join(parts)
