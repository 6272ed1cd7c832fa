"""Render report data to PDF (WeasyPrint) and e-mail HTML (Jinja2)."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from servicepulse.errors import PermanentError
from servicepulse.reports.i18n import TEMPLATES_DIR

CJK_FONT_FAMILIES = ("WenQuanYi Zen Hei", "Noto Sans CJK SC", "Source Han Sans SC")
FONT_HELP = ("no CJK font is installed, so Chinese text would print as empty boxes. Install "
             "one: Debian/Ubuntu `apt-get install fonts-wqy-zenhei` (or fonts-noto-cjk), "
             "macOS/Windows ship one already; `make setup` does this when run as root.")


class RenderError(PermanentError):
    pass


# A figure with its sign and unit ("−1.5 分钟", "+0.4 pp", "35.9%"): a narrow screen must
# not break it across lines. CJK text may break between any two characters, so a unit in
# Chinese would otherwise end one line and start the next.
_FIGURE = re.compile(r"[+−±-]?\d[\d,.]*(?:\s?(?:%|[A-Za-z]{1,3}\b|[\u4e00-\u9fff]{1,4}))?")


def keep_figures_together(text: str) -> Markup:
    """``text`` escaped, each figure in a span that does not wrap (inline CSS, for mail)."""
    pieces, end = [], 0
    for match in _FIGURE.finditer(text):
        pieces.append(escape(text[end:match.start()]))
        pieces.append(Markup('<span style="white-space:nowrap;">{}</span>').format(match[0]))
        end = match.end()
    pieces.append(escape(text[end:]))
    return Markup("").join(pieces)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)),
                      autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["keep_figures_together"] = keep_figures_together
    return env


@lru_cache(maxsize=1)
def installed_cjk_font() -> str | None:
    try:
        listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True,
                                text=True, check=False).stdout
    except FileNotFoundError:
        return None
    for family in CJK_FONT_FAMILIES:
        if family in listed:
            return family
    return None


def page_counter_css(message: str) -> str:
    """'Page {page} of {pages}' -> CSS content: "Page " counter(page) " of " counter(pages)."""
    parts = []
    for piece in re.split(r"(\{page\}|\{pages\})", message):
        if piece == "{page}":
            parts.append("counter(page)")
        elif piece == "{pages}":
            parts.append("counter(pages)")
        elif piece:
            parts.append('"' + piece.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(parts)


def render_html(report: str, template: str, context: dict[str, Any]) -> str:
    return environment().get_template(f"{report}/{template}").render(
        page_counter_css=page_counter_css(context.get("page_of", "")), **context)


def _attachments(context: dict[str, Any]) -> list:
    """The files a report carries inside its PDF (every department's KPIs as CSV),
    dated with the data's as-of moment so a re-render stays byte-identical."""
    from weasyprint import Attachment

    if not context.get("attachments"):
        return []
    as_of = datetime.fromisoformat(context["data_as_of"])
    return [Attachment(string=item["text"].encode("utf-8"), name=item["name"],
                       description=item["description"], created=as_of, modified=as_of)
            for item in context["attachments"]]


@lru_cache(maxsize=1)
def _font_configuration() -> Any:
    """One WeasyPrint font configuration for every render of the process. A new one per
    render (WeasyPrint's default) kept about 240 KiB of the text library's memory each
    time, so a process publishing audience after audience grew without end; shared, it
    stays flat, and the PDFs are byte for byte the same (the stylesheets declare no
    @font-face: only the system's fonts are configured)."""
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def render_pdf(report: str, context: dict[str, Any]) -> bytes:
    from weasyprint import CSS, HTML

    if context.get("locale") == "zh-CN" and installed_cjk_font() is None:
        raise RenderError(FONT_HELP)
    html = render_html(report, "report.html.j2", context)
    fonts = _font_configuration()
    stylesheets = [CSS(filename=str(TEMPLATES_DIR / "_partials" / "base.css"),
                       font_config=fonts),
                   CSS(filename=str(TEMPLATES_DIR / report / "style.css"), font_config=fonts)]
    document = HTML(string=html, base_url=str(TEMPLATES_DIR / report)).render(
        stylesheets=stylesheets, font_config=fonts)
    pdf = document.write_pdf(attachments=_attachments(context))
    # WeasyPrint draws a character that no font has as an empty box and only notes
    # it on the font object: fail the render rather than the reader.
    missing = sorted({chr(code) for font in document.fonts.values()
                      for code in getattr(font, "missing", {})})
    if missing:
        raise RenderError(f"no font has a glyph for {''.join(missing[:20])!r}; " + FONT_HELP)
    return pdf
