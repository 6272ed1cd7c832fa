"""Small builders shared by the suites, so each suite reads as a list of rules."""

from __future__ import annotations

import great_expectations as gx
from great_expectations import expectations as gxe


def meta(check: str, severity: str = "critical") -> dict:
    return {"check": check, "severity": severity}


def not_null(column: str, severity: str = "critical"):
    return gxe.ExpectColumnValuesToNotBeNull(column=column,
                                             meta=meta(f"{column}_not_null", severity))


def allowed(column: str, values: list[str], severity: str = "critical"):
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values,
                                           meta=meta(f"{column}_allowed_values", severity))


def between(column: str, low: float, high: float, severity: str = "critical"):
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high,
                                             meta=meta(f"{column}_range", severity))


def in_order(earlier: str, later: str, severity: str = "critical"):
    """``later`` is not before ``earlier`` where both are known."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=later, column_B=earlier, or_equal=True,
        ignore_row_if="either_value_is_missing",
        meta=meta(f"{earlier}_before_{later}", severity))


def no_rows(check: str, query: str, description: str, severity: str = "critical"):
    """Rows returned by ``query`` (with {batch} for the table) are defects."""
    return gxe.UnexpectedRowsExpectation(unexpected_rows_query=query, description=description,
                                         meta=meta(check, severity))


def suite(name: str, *expectations) -> gx.ExpectationSuite:
    built = gx.ExpectationSuite(name=name)
    for expectation in expectations:
        built.add_expectation(expectation)
    return built
