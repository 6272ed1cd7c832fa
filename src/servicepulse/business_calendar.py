"""The business calendar: which local dates are working days.

Public holidays and the adjusted working weekends that go with them (China's 调休:
a Saturday or Sunday worked to make a longer holiday) come from the ``holidays``
package for the configured country. The table written here is a dbt source;
``dim_dates`` applies the organisation's own overrides (a seed) on top and numbers
the working days, and every "within N working days" KPI counts with that number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from servicepulse.settings import CalendarSettings, Settings
from servicepulse.warehouse import Warehouse

TABLE = "public_calendar"
COLUMNS = [("calendar_date", "DATE"), ("is_working_day", "BOOLEAN"),
           ("day_kind", "VARCHAR"), ("holiday_name", "VARCHAR"),
           ("country", "VARCHAR")]


@dataclass(frozen=True)
class CalendarDay:
    calendar_date: date
    is_working_day: bool
    day_kind: str          # workday, weekend, public_holiday or adjusted_workday
    holiday_name: str | None


def calendar_days(calendar: CalendarSettings,
                  years: tuple[int, int] | None = None) -> list[CalendarDay]:
    """The days of ``years`` (first, last), else of the configured years."""
    import holidays

    first_year, last_year = years or (calendar.first_year, calendar.last_year)
    public = holidays.country_holidays(calendar.country, subdiv=calendar.subdivision,
                                       years=range(first_year, last_year + 1),
                                       language="en_US")
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


def calendar_years(settings: Settings, warehouse: Warehouse) -> tuple[int, int]:
    """The configured years, or those the raw data spans: from the year of its earliest
    timestamp to the year after its newest (deadlines run on past the data), within
    1970-2100; the current year's neighbours for a warehouse with no data yet."""
    configured = settings.calendar
    if configured.first_year is not None and configured.last_year is not None:
        return configured.first_year, configured.last_year
    from servicepulse.sources.contracts import load_contracts

    raw = settings.warehouse.schema("raw")
    earliest, newest = [], []
    for name, contract in load_contracts(settings.contracts_path).items():
        columns = [c.name for c in contract.columns if c.type == "timestamp"]
        if not columns or not warehouse.table_exists(raw, name):
            continue
        bounds = ", ".join(f'min("{c}"), max("{c}")' for c in columns)
        row = warehouse.fetch_frame(f'select {bounds} from "{raw}"."{name}"').iloc[0]
        values = [v for v in row if v is not None and not pd.isna(v)]
        earliest += values
        newest += values
    if earliest:
        first = max(1970, min(v.year for v in earliest))
        last = min(2100, max(v.year for v in newest) + 1)
    else:
        from datetime import datetime

        this_year = datetime.now(settings.tz).year     # no data: nothing to date yet
        first, last = this_year - 1, this_year + 1
    return (configured.first_year or first, configured.last_year or max(last, first))


def write_calendar(settings: Settings, warehouse: Warehouse) -> int:
    """Replace the calendar table with the country's days of the calendar years
    (calendar_years); returns its rows."""
    days = calendar_days(settings.calendar, calendar_years(settings, warehouse))
    frame = pd.DataFrame({
        "calendar_date": [d.calendar_date for d in days],
        "is_working_day": [d.is_working_day for d in days],
        "day_kind": [d.day_kind for d in days],
        "holiday_name": [d.holiday_name for d in days],
        "country": settings.calendar.country,
    })
    warehouse.replace_slice(settings.warehouse.schema("reference"), TABLE, COLUMNS, frame,
                            "1 = 1", [])
    return len(frame)
