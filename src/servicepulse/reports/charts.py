"""Small vector (SVG) charts for the PDF. One palette, readable in greyscale:
the series is a solid dark line with point markers, the target a dashed mid-grey
line, so neither depends on colour."""

from __future__ import annotations

from html import escape

SERIES_COLOUR = "#1f4e79"
TARGET_COLOUR = "#8c8c8c"
GRID_COLOUR = "#d9d9d9"


def trend_svg(values: list[float | None], labels: list[str], target: float | None,
              target_label: str, width: int = 240, height: int = 96,
              empty_label: str = "") -> str:
    """A line chart of ``values`` (None leaves a gap) with an optional target line; with
    no value at all, a frame that says ``empty_label`` rather than a blank box."""
    known = [v for v in values if v is not None]
    if not known:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                f'viewBox="0 0 {width} {height}" font-size="9">'
                f'<rect x="4" y="6" width="{width - 8}" height="{height - 22}" fill="none" '
                f'stroke="{GRID_COLOUR}" stroke-width="0.8" stroke-dasharray="3 3"/>'
                f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
                f'fill="#595959">{escape(empty_label)}</text></svg>')
    low = min(known + ([target] if target is not None else []))
    high = max(known + ([target] if target is not None else []))
    if high == low:
        high, low = high + 1, low - 1
    pad = (high - low) * 0.12
    low, high = low - pad, high + pad
    left, right, top, bottom = 4, width - 4, 6, height - 16
    step = (right - left) / max(1, len(values) - 1)

    def y(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              f'viewBox="0 0 {width} {height}" font-size="8">'),
             (f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" '
              f'stroke="{GRID_COLOUR}" stroke-width="0.8"/>')]
    if target is not None:
        ty = y(target)
        parts.append(f'<line x1="{left}" y1="{ty:.1f}" x2="{right}" y2="{ty:.1f}" '
                     f'stroke="{TARGET_COLOUR}" stroke-width="1" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{right}" y="{ty - 2:.1f}" text-anchor="end" '
                     f'fill="{TARGET_COLOUR}">{escape(target_label)}</text>')
    segment: list[str] = []
    segments = []
    for index, value in enumerate(values):
        if value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{left + index * step:.1f},{y(value):.1f}")
    if segment:
        segments.append(segment)
    for points in segments:
        parts.append(f'<polyline fill="none" stroke="{SERIES_COLOUR}" stroke-width="1.6" '
                     f'points="{" ".join(points)}"/>')
        for point in points:
            cx, cy = point.split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="1.8" fill="{SERIES_COLOUR}"/>')
    for index in (0, len(labels) - 1):
        anchor = "start" if index == 0 else "end"
        parts.append(f'<text x="{left + index * step:.1f}" y="{height - 4}" '
                     f'text-anchor="{anchor}" fill="#595959">{escape(labels[index])}</text>')
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
