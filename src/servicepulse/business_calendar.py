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


def calendar_days(calendar: CalendarSettings) -> list[CalendarDay]:
    import holidays

    years = range(calendar.first_year, calendar.last_year + 1)
    public = holidays.country_holidays(calendar.country, subdiv=calendar.subdivision,
                                       years=years, language="en_US")
    days = []
    day, last = date(calendar.first_year, 1, 1), date(calendar.last_year, 12, 31)
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


def write_calendar(settings: Settings, warehouse: Warehouse) -> int:
    """Replace the calendar table with the configured country's years; returns its rows."""
    days = calendar_days(settings.calendar)
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
