"""The e-mail's one chart, as a PNG: mail clients show an inline raster image (a cid:
attachment) but not SVG, and none fetch a remote one unasked.

Drawn with Pillow and its built-in font (digits and period labels only; the chart's
title and its text alternative are in the HTML, in the reader's language), so the same
series gives the same bytes on every machine."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image, ImageDraw, ImageFont

from servicepulse.reports.charts import SERIES_COLOUR

# Twice the size a phone shows it at (about 340 css px wide), so it is sharp there and
# its figures are still ~13 px; a desktop client shows it at most 560 px wide.
WIDTH, HEIGHT = 720, 300
EARLIER_BAR = "#9db3c8"
TEXT = "#404040"
GRID = "#d9d9d9"


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def on_target_png(labels: list[str], on_target: list[int | None], measured: list[int | None]) -> bytes:
    """Bars of how many KPIs with a target were on target in each period (``None``: no
    figures that period), the latest bar dark and labelled "on / measured"; the value
    axis runs from 0 to the most KPIs measured in any period."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    top_value = max([m for m in measured if m] + [1])
    left, right, top, bottom = 56, WIDTH - 12, 50, HEIGHT - 44
    small, large = _font(26), _font(32)

    def y(value: float) -> float:
        return bottom - value / top_value * (bottom - top)

    for value in sorted({0, top_value // 2, top_value}):
        draw.line([(left, y(value)), (right, y(value))], fill=GRID, width=2)
        draw.text((left - 10, y(value)), str(value), fill=TEXT, font=small, anchor="rm")
    slot = (right - left) / max(1, len(labels))
    last = max((i for i, v in enumerate(on_target) if v is not None), default=None)
    for index, (label, value) in enumerate(zip(labels, on_target)):
        x0 = left + index * slot + slot * 0.18
        x1 = left + (index + 1) * slot - slot * 0.18
        if value is not None:
            draw.rectangle([(x0, y(value)), (x1, bottom)],
                           fill=SERIES_COLOUR if index == last else EARLIER_BAR)
        # Every other period named when they would crowd, always the latest.
        if len(labels) <= 6 or index % 2 == (len(labels) - 1) % 2:
            draw.text(((x0 + x1) / 2, bottom + 10), label.removeprefix("20"), fill=TEXT,
                      font=small, anchor="mt")
    if last is not None:
        draw.text((left + (last + 0.5) * slot, y(on_target[last]) - 10),
                  f"{on_target[last]}/{measured[last]}", fill=SERIES_COLOUR, font=large,
                  anchor="mb")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
