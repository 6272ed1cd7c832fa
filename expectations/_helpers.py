"""Small builders shared by the suites, so each suite reads as a list of rules.

Every suite's ``build_suite(scope)`` gets a Scope: the data interval being checked,
how to name another table (schemas carry the environment's prefix), and the
configured thresholds. Queries are written with ``{batch}`` for the rows the suite
checks (for a raw table: the rows this run loaded); everything else is substituted
here, since GX formats the query itself. Freshness and volume need the history, so
they read the whole table by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo

import great_expectations as gx
from great_expectations import expectations as gxe


@dataclass(frozen=True)
class Scope:
    interval_start: datetime          # aware, UTC
    interval_end: datetime            # aware, UTC
    local_days: tuple[date, ...]      # the interval's local dates (partitions)
    table: Callable[[str, str], str]  # (schema, table) -> quoted, prefixed name
    freshness_lag: dict[str, timedelta] = field(default_factory=dict)
    volume_band: float = 0.5
    jump_band: float = 0.5
    reporting_tz: tzinfo = UTC

    def ts(self, moment: datetime) -> str:
        return f"cast('{moment.isoformat()}' as timestamptz)"


def meta(check: str, severity: str = "critical", key: str | None = None) -> dict:
    return {"check": check, "severity": severity, "key": key}


def not_null(column: str, severity: str = "critical", key: str | None = None):
    return gxe.ExpectColumnValuesToNotBeNull(column=column,
                                             meta=meta(f"{column}_not_null", severity, key))


def allowed(column: str, values: list[str], severity: str = "critical",
            key: str | None = None):
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values,
                                           meta=meta(f"{column}_allowed_values", severity, key))


def between(column: str, low: float, high: float, severity: str = "critical",
            key: str | None = None):
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high,
                                             meta=meta(f"{column}_range", severity, key))


def in_order(earlier: str, later: str, severity: str = "critical", key: str | None = None):
    """``later`` is not before ``earlier`` where both are known."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=later, column_B=earlier, or_equal=True,
        ignore_row_if="either_value_is_missing",
        meta=meta(f"{earlier}_before_{later}", severity, key))


def no_rows(check: str, query: str, description: str, severity: str = "critical",
            key: str | None = None):
    """Rows returned by ``query`` (with {batch} for the table) are defects."""
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=query, description=description,
                                         meta=meta(check, severity, key))


def references(scope: Scope, column: str, schema: str, table: str, target_column: str,
               key: str, severity: str = "critical"):
    """Every non-null ``column`` names an existing ``table.target_column``."""
    target = scope.table(schema, table)
    return no_rows(
        f"{column}_references_{table}",
        f"with child as (select * from {{batch}}) "
        f"select * from child where child.{column} is not null and not exists "
        f"(select 1 from {target} as parent where parent.{target_column} = child.{column})",
        f"Every {column} exists in {table}.", severity, key)


def fresh(scope: Scope, source: str, severity: str = "critical"):
    """The newest change delivered for the interval is within the configured lag of
    its end: a source that stopped delivering mid-day is caught."""
    lag = scope.freshness_lag.get(source)
    if lag is None:
        return None
    end = scope.ts(scope.interval_end)
    limit = scope.ts(scope.interval_end - lag)
    start = scope.ts(scope.interval_start)
    table = scope.table("raw", source)
    return no_rows(
        "freshness",
        f"select newest from (select max(updated_at) as newest from {table} "
        f"where updated_at >= {start} and updated_at < {end}) as latest "
        f"where newest is null or newest < {limit}",
        f"The newest {source} change of the interval is less than {lag} before its end.",
        severity)


def nothing_quarantined(scope: Scope, source: str, severity: str = "warning"):
    """The loader set no row of this interval's batch aside (raw.quarantined_rows): the
    good rows went on, but the data team hears which rows broke which rule."""
    table = scope.table("raw", "quarantined_rows")
    end = (scope.local_days[-1] + timedelta(days=1)).isoformat()
    return no_rows(
        "no_rows_quarantined",
        f"select source_file, source_row, field, value, reason from {table} "
        # The batch id ends with the interval's end day (no ':' here: SQLAlchemy would
        # read ":2026" as a bind parameter).
        f"where source = '{source}' and right(batch_id, 10) = '{end}'",
        f"No {source} row of the interval was quarantined by the loader.",
        severity)   # no key: the alert shows file, row, field, value and reason


# Below this many events a day, day-to-day swings are noise, not a broken feed.
VOLUME_MIN_TYPICAL = 20


def volume(scope: Scope, source: str, event_column: str, key: str,
           severity: str = "warning"):
    """Records whose ``event_column`` falls on the interval's last local day are within
    the band of the median of the same weekday over the four weeks before. Weeks
    before the source's first record are not history and are left out."""
    day = scope.local_days[-1]
    tz = scope.interval_end.tzinfo
    table = scope.table("raw", source)

    def day_count(offset_weeks: int) -> str:
        local = datetime.combine(day - timedelta(days=7 * offset_weeks), datetime.min.time(),
                                 scope.reporting_tz)
        start, end = local.astimezone(tz), (local + timedelta(days=1)).astimezone(tz)
        return (f"select count(distinct {key}) as events from {table} "
                f"where {event_column} >= {scope.ts(start)} and {event_column} < {scope.ts(end)}")

    history = " union all ".join(day_count(n) for n in range(1, 5))
    low, high = 1 - scope.volume_band, 1 + scope.volume_band
    return no_rows(
        "volume",
        f"select today.events, history.typical from ({day_count(0)}) as today, "
        f"(select percentile_cont(0.5) within group (order by events) as typical "
        f"from ({history}) as days where events > 0) as history "
        f"where history.typical >= {VOLUME_MIN_TYPICAL} "
        f"and (today.events < {low} * history.typical "
        f"or today.events > {high} * history.typical)",
        f"Records of {day} are within ±{scope.volume_band:.0%} of the median of the same "
        "weekday over the four weeks before.", severity)


def suite(name: str, *expectations) -> gx.ExpectationSuite:
    built = gx.ExpectationSuite(name=name)
    for expectation in expectations:
        if expectation is not None:
            built.add_expectation(expectation)
    return built
