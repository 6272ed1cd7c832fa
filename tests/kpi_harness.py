"""Load a source folder and build the marts, the real path (loader + dbt)."""

from __future__ import annotations

import math
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from servicepulse.constants import SOURCES
from servicepulse.kpis import Period, kpi_document, kpi_table
from servicepulse.load import load_source
from servicepulse.settings import Settings
from servicepulse.transform import build
from servicepulse.warehouse import connected

SHANGHAI = ZoneInfo("Asia/Shanghai")


def load_and_build(settings: Settings, until: datetime) -> None:
    start = until.replace(day=until.day - 1)
    with connected(settings) as warehouse:
        for source in SOURCES:
            load_source(settings, warehouse, source, start, until)
    build(settings)


def kpis(settings: Settings, period: str, department: str | None = None) -> dict:
    with connected(settings) as warehouse:
        return kpi_document(settings, warehouse, Period.parse(period), department)["kpis"]


def kpis_by(settings: Settings, period: str, dimension: str) -> dict:
    """Dimension value -> KPI id -> KPI, as `servicepulse kpis --by` serves them."""
    with connected(settings) as warehouse:
        return kpi_document(settings, warehouse, Period.parse(period), by=dimension)["slices"]


def all_kpi_rows(settings: Settings, grain: str) -> list[tuple]:
    """Every row of a KPI mart, every dimension, in one engine-neutral form."""
    with connected(settings, read_only=True) as warehouse:
        frame = warehouse.fetch_frame(
            f"select period_start, period_end, dimension, dimension_value, kpi_id, numerator, "
            f"denominator, value, target, status, previous_value "
            f"from {kpi_table(settings, grain)} "
            f"order by period_start, dimension, dimension_value, kpi_id")
    return [tuple(_comparable(value) for value in record)
            for record in frame.itertuples(index=False)]


def _comparable(value):
    """One representation for both engines: dates as ISO text, numbers as rounded floats."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "year"):
        return str(value)[:10]
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return round(float(value), 9)
    return value


UNTIL = datetime(2026, 11, 24, tzinfo=SHANGHAI)
