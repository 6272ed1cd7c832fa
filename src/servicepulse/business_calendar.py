"""The business calendar: which local dates are working days.

Public holidays and the adjusted working weekends that go with them (China's 调休:
a Saturday or Sunday worked to make a longer holiday) come from the ``holidays``
package. They are written once, by ``servicepulse calendar``, into the dbt seed
``public_holidays`` (committed, one country and subdivision per block of rows), so
that dbt builds the calendar by itself: ``int_public_calendar_days`` lays every date
of the calendar's years over the country's weekend and those exceptions, and
``dim_dates`` applies the organisation's own overrides (seed ``calendar_overrides``)
and numbers the working days that every "within N working days" KPI counts with.

A plain ``dbt build`` on a warehouse holding only raw tables therefore gives the same
calendar as ``servicepulse build``; the settings only choose the country and, when
given, the years (dbt vars ``calendar_*``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from servicepulse.errors import UserError
from servicepulse.paths import DBT_SEEDS_DIR
from servicepulse.settings import CalendarSettings

SEED = DBT_SEEDS_DIR / "public_holidays.csv"
SEED_COLUMNS = ("country", "subdivision", "calendar_date", "day_kind", "holiday_name",
                "is_working_day")
# The years a seeded country covers: any history a warehouse may hold (the loader's
# plausible floor is 1970) and any deadline it may compute.
SEED_YEARS = (1970, 2100)


class CalendarNotSeeded(UserError):
    """The configured country (or subdivision) has no rows in the public_holidays seed."""


@dataclass(frozen=True)
class CalendarDay:
    calendar_date: date
    is_working_day: bool
    day_kind: str          # workday, weekend, public_holiday or adjusted_workday
    holiday_name: str | None


def _public_holidays(country: str, subdivision: str | None, years: tuple[int, int]):
    import holidays

    return holidays.country_holidays(country, subdiv=subdivision,
                                     years=range(years[0], years[1] + 1), language="en_US")


def calendar_days(calendar: CalendarSettings,
                  years: tuple[int, int] | None = None) -> list[CalendarDay]:
    """Every day of ``years`` (first, last), else of the configured years, as the
    holidays package sees it: the reference the dbt calendar is tested against."""
    first_year, last_year = years or (calendar.first_year, calendar.last_year)
    public = _public_holidays(calendar.country, calendar.subdivision, (first_year, last_year))
    days = []
    day, last = date(first_year, 1, 1), date(last_year, 12, 31)
    while day <= last:
        if day in public:
            kind = "public_holiday"
        elif day in public.weekend_workdays:
            kind = "adjusted_workday"
        elif public.is_weekend(day):
            kind = "weekend"
        else:
            kind = "workday"
        days.append(CalendarDay(day, public.is_working_day(day), kind, public.get(day)))
        day += timedelta(days=1)
    return days


def weekend_isodows(calendar: CalendarSettings) -> list[int]:
    """The country's weekend as ISO day numbers (Monday 1 … Sunday 7)."""
    public = _public_holidays(calendar.country, calendar.subdivision, (2000, 2000))
    return sorted(weekday + 1 for weekday in public.weekend)


def seed_rows(calendar: CalendarSettings, years: tuple[int, int] = SEED_YEARS) -> list[dict]:
    """The seed's rows for one country and subdivision: only the days that break the
    weekly pattern (public holidays, worked weekend days); dbt fills in the rest."""
    country, subdivision = _calendar_key(calendar)
    return [{"country": country, "subdivision": subdivision,
             "calendar_date": day.calendar_date.isoformat(), "day_kind": day.day_kind,
             "holiday_name": day.holiday_name or "",
             "is_working_day": "true" if day.is_working_day else "false"}
            for day in calendar_days(calendar, years)
            if day.day_kind in ("public_holiday", "adjusted_workday")]


def _key(row: dict) -> tuple[str, str]:
    return row["country"], row["subdivision"]


def _calendar_key(calendar: CalendarSettings) -> tuple[str, str]:
    """The seed rows' key of a configured calendar (no subdivision: an empty one)."""
    return calendar.country, calendar.subdivision or ""


def label(calendar: CalendarSettings) -> str:
    """CN, or DE/BY with a subdivision."""
    return calendar.country + (f"/{calendar.subdivision}" if calendar.subdivision else "")


def read_seed(path: Path = SEED) -> list[dict]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_seed(calendar: CalendarSettings, path: Path = SEED,
               years: tuple[int, int] = SEED_YEARS) -> int:
    """Add (or renew) the country's rows in the seed, keeping every other country's;
    returns the country's rows. Rows are sorted so that a renewal diffs cleanly."""
    fresh = seed_rows(calendar, years)
    kept = [row for row in read_seed(path) if _key(row) != _calendar_key(calendar)]
    rows = sorted(kept + fresh, key=lambda row: (*_key(row), row["calendar_date"]))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=SEED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(text.getvalue(), encoding="utf-8")
    return len(fresh)


def check_seeded(calendar: CalendarSettings, path: Path = SEED) -> None:
    """Refuse a build whose country the seed does not hold: its calendar would have
    weekends and no holidays, and every working-day deadline would be silently wrong."""
    if not any(_key(row) == _calendar_key(calendar) for row in read_seed(path)):
        command = f"servicepulse calendar --country {calendar.country}" + (
            f" --subdivision {calendar.subdivision}" if calendar.subdivision else "")
        raise CalendarNotSeeded(
            f"the business calendar has no public holidays for {label(calendar)} (settings "
            f"calendar.country) in {path}: run `{command}` to add them from the holidays "
            "package, and commit the file")


def dbt_vars(calendar: CalendarSettings) -> dict[str, object]:
    """What dbt needs to know of the settings to build the calendar."""
    return {"calendar_country": calendar.country,
            "calendar_subdivision": calendar.subdivision or "",
            "calendar_weekend_isodows": weekend_isodows(calendar),
            "calendar_first_year": calendar.first_year,
            "calendar_last_year": calendar.last_year}
