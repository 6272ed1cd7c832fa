"""The rules every KPI mart (kpi_daily, kpi_weekly, kpi_monthly) must satisfy."""

from expectations._helpers import no_rows, not_null, suite

# Below this many observations a week-on-week jump is noise, not news.
JUMP_MIN_DENOMINATOR = 30


def kpi_table_suite(scope, name: str, step: str, flag_jumps: bool = True):
    """``flag_jumps``: compare each period with the one before (weeks and months; days
    swing with the weekday, so a day-on-day jump is not news). Stocks (BACKLOG, unit
    count) are left out: they build up from the first day of data and move with the
    workload, which the reports show; a jump there is not a sign of broken data."""
    first_day, last_day = scope.local_days[0], scope.local_days[-1]
    jump_checks = [no_rows(
        "kpi_jump_for_review",
        "select period_start, kpi_id, value, previous_value from {batch} "
        "where dimension = 'organisation' and unit <> 'count' and value is not null "
        "and previous_value is not null and previous_value <> 0 "
        f"and denominator >= {JUMP_MIN_DENOMINATOR} "
        f"and period_start <= date '{last_day}' and period_end >= date '{first_day}' "
        f"and abs(value - previous_value) / abs(previous_value) > {scope.jump_band}",
        f"A KPI moving more than {scope.jump_band:.0%} against the previous period is "
        "flagged for review.", severity="warning", key="kpi_id")] if flag_jumps else []
    return suite(
        name,
        not_null("period_start"),
        not_null("kpi_id"),
        # A KPI the sources cannot measure (not_measured_reason) has no denominator.
        no_rows("denominator_not_null",
                "select * from {batch} where denominator is null "
                "and not_measured_reason is null",
                "Every measured KPI says what it was measured over.", key="kpi_id"),
        # CMP_RATE divides complaints by tickets, two populations: an agent's day can
        # bring two complaints and one new ticket. Every other rate counts a subset.
        no_rows("rates_within_0_1",
                "select * from {batch} where unit = 'fraction' "
                "and (value < 0 or (value > 1 and kpi_id <> 'CMP_RATE'))",
                "Every rate is a fraction in [0, 1]; CMP_RATE is not negative.", key="kpi_id"),
        no_rows("csi_within_0_100",
                "select * from {batch} where unit = 'index' and (value < 0 or value > 100)",
                "Index KPIs (CSI, COMPOSITE) are on a 0-100 scale.", key="kpi_id"),
        # CMP_RATE excepted, as above.
        no_rows("numerator_not_above_denominator",
                "select * from {batch} where unit = 'fraction' and kpi_id <> 'CMP_RATE' "
                "and numerator > denominator",
                "A rate's numerator (a subset of its denominator) never exceeds it.",
                key="kpi_id"),
        no_rows("null_value_only_without_data",
                "select * from {batch} where value is null and denominator > 0",
                "A KPI is null only when there is nothing to measure.", key="kpi_id"),
        no_rows("continuous_periods",
                "with periods as (select distinct period_start from {batch}) "
                "select here.period_start from periods as here "
                "where here.period_start < (select max(period_start) from periods) "
                "and not exists (select 1 from periods as following where "
                f"following.period_start = cast(here.period_start + interval '{step}' as date))",
                "No period is missing between the first and the last.", key="period_start"),
        *jump_checks,
    )
