"""Message catalogues and locale-aware formatting for reports and e-mails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from babel.dates import format_date
from babel.numbers import format_decimal

from servicepulse.paths import REPORT_TEMPLATES_DIR
from servicepulse.settings import LOCALES

TEMPLATES_DIR = REPORT_TEMPLATES_DIR
_BABEL_LOCALE = {"zh-CN": "zh_Hans_CN", "en": "en_GB"}


@cache
def _catalogue(locale: str) -> dict[str, Any]:
    if locale not in LOCALES:
        raise ValueError(f"unsupported locale {locale!r}; supported: {', '.join(LOCALES)}")
    path = TEMPLATES_DIR / "messages" / f"{locale}.yaml"
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def printed_nonzero(text: str) -> bool:
    """Whether a printed figure shows any digit but zero."""
    return any(character in "123456789" for character in text)


@dataclass(frozen=True)
class Messages:
    locale: str

    def __call__(self, key: str, **values: Any) -> str:
        try:
            text = _catalogue(self.locale)[key]
        except KeyError:
            raise KeyError(f"message {key!r} missing from the {self.locale} catalogue") from None
        return text.format(**values) if values else text

    def department(self, code: str | None) -> str:
        if code is None:
            return "–"
        return _catalogue(self.locale).get("departments", {}).get(code, code)

    def category(self, code: str | None) -> str:
        if code is None:
            return "–"
        return _catalogue(self.locale).get("complaint_categories", {}).get(code, code)

    def section_texts(self, kind: str) -> dict[str, str]:
        """Every ``section_``/``col_`` text and the few others templates print, the
        period's own wording (``<key>_week`` / ``<key>_month``) where one exists."""
        catalogue = _catalogue(self.locale)
        keys = {key.removesuffix("_week").removesuffix("_month") for key in catalogue
                if key.startswith(("section_", "col_", "label_"))}
        return {key: catalogue.get(f"{key}_{kind}", catalogue.get(key, "")) for key in keys}

    @property
    def babel_locale(self) -> str:
        return _BABEL_LOCALE[self.locale]

    def number(self, value: float, decimals: int = 1) -> str:
        """``value`` as the locale writes it; a value whose printed digits are all zero
        has no sign (never "-0.0")."""
        magnitude = self._magnitude(value, decimals)
        return "-" + magnitude if value < 0 and printed_nonzero(magnitude) else magnitude

    def _magnitude(self, value: float, decimals: int) -> str:
        # Babel rounds half-even from the decimal text; deciding zero from what it
        # printed, not from round(), keeps the sign and the digits in agreement.
        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return format_decimal(abs(value), format=pattern, locale=self.babel_locale)

    def date(self, value: date) -> str:
        return format_date(value, format="medium", locale=self.babel_locale)

    def moment(self, value: datetime) -> str:
        """A local moment with its offset, e.g. "2026年11月22日 23:58 (UTC+08:00)"."""
        offset = value.strftime("%z")
        return f"{self.date(value.date())} {value:%H:%M} (UTC{offset[:3]}:{offset[3:]})"

    def short_moment(self, value: datetime) -> str:
        """A local moment within a report's period, e.g. "11-22 21:20" (tables); a
        day's end reads as "11-22 24:00", not as the next day's start."""
        if (value.hour, value.minute, value.second) == (0, 0, 0):
            return f"{value - timedelta(days=1):%m-%d} 24:00"
        return f"{value:%m-%d %H:%M}"

    def duration(self, minutes: float) -> str:
        """Lateness as a reader weighs it: minutes, hours, or days and hours."""
        minutes = max(0.0, minutes)
        if minutes < 60:
            return self("duration_minutes", minutes=round(minutes))
        if minutes < 24 * 60:
            return self("duration_hours", hours=self.number(minutes / 60))
        days, rest = divmod(round(minutes / 60), 24)
        return self("duration_days", days=days, hours=rest)

    def kpi_value(self, value: float | None, unit: str) -> str:
        """A KPI value as a reader expects it: rates as percentages, times with units."""
        if value is None:
            return self("no_data")
        if unit == "fraction":
            return f"{self.number(value * 100)}%"
        if unit == "minutes":
            return self("unit_minutes", value=self.number(value))
        if unit == "seconds":  # handling times read better in minutes
            return self("unit_minutes", value=self.number(value / 60))
        if unit == "points":
            return self("unit_points", value=self.number(value))
        if unit == "count":
            return self.number(value, decimals=0)
        return self.number(value)

    def kpi_change(self, value: float | None, previous: float | None, unit: str) -> str:
        if value is None or previous is None:
            return self("no_change")
        delta = value - previous
        # As printed: rates in points, handling times in minutes, counts whole.
        shown = {"fraction": delta * 100, "seconds": delta / 60}.get(unit, delta)
        magnitude = self._magnitude(shown, 0 if unit == "count" else 1)
        # The sign of the change as printed: a change that prints as nothing is "±0.0",
        # never "−0.0" or "+0.0".
        sign = "±" if not printed_nonzero(magnitude) else "+" if delta > 0 else "−"
        if unit == "fraction":
            return sign + self("percentage_points", value=magnitude)
        if unit in ("minutes", "seconds"):
            return sign + self("unit_minutes", value=magnitude)
        return sign + magnitude
