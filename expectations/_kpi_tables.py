"""The rules every KPI mart (kpi_weekly, kpi_monthly) must satisfy."""

from expectations._helpers import no_rows, not_null, suite


def kpi_table_suite(name: str):
    return suite(
        name,
        not_null("period_start"),
        not_null("kpi_id"),
        not_null("denominator"),
        no_rows("rates_within_0_1",
                "select * from {batch} where unit = 'fraction' and (value < 0 or value > 1)",
                "Every rate is a fraction in [0, 1]."),
        no_rows("csi_within_0_100",
                "select * from {batch} where unit = 'index' and (value < 0 or value > 100)",
                "CSI is on a 0-100 scale."),
        # CMP_RATE divides complaints by tickets, two populations: a slice may
        # receive complaints without new tickets. Every other rate counts a subset.
        no_rows("numerator_not_above_denominator",
                "select * from {batch} where unit = 'fraction' and kpi_id <> 'CMP_RATE' "
                "and numerator > denominator",
                "A rate's numerator (a subset of its denominator) never exceeds it."),
        no_rows("null_value_only_without_data",
                "select * from {batch} where value is null and denominator > 0",
                "A KPI is null only when there is nothing to measure."),
    )
