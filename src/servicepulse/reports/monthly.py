"""The monthly leadership report's data: a pure function of mart rows.

Sections follow the catalogue's "Monthly leadership report": a one-page summary of
KPIs against targets with month-over-month and year-over-year change, 13-month
trends, the complaint priority matrix, top issues by root-cause category, the
department ranking by composite score, audits and mystery shoppers, data quality.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicepulse.kpis import Period
from servicepulse.reports import sections
from servicepulse.reports.i18n import Messages
from servicepulse.reports.sections import QualitySnapshot

TOP_ISSUES = 5


def build_monthly_report(period: Period, locale: str, department: str | None,
                         trend_rows: list[dict[str, Any]],
                         department_rows: list[dict[str, Any]],
                         agent_rows: list[dict[str, Any]],
                         category_rows: list[dict[str, Any]],
                         breaches: list[dict[str, Any]],
                         quality: QualitySnapshot | None,
                         data_as_of: datetime, breach_limit: int, top_n: int = 10,
                         department_columns: int = 5,
                         actions: dict[str, Any] | None = None,
                         oldest_open: list[dict[str, Any]] | None = None,
                        survey_comments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the monthly template shows, already worded and formatted.
    ``agent_rows`` and the breach rows themselves are not shown: leadership reads
    departments and missed deadlines by step, not agents and single complaints. Long
    dimensions show ``top_n`` lines and "others"; the appendix holds them all (every
    department's KPIs as a CSV file attached to the PDF)."""
    del agent_rows, breach_limit, oldest_open  # single items are the weekly's business
    t = Messages(locale)
    this_month = sections.headline(trend_rows, period)
    year_ago = sections.year_ago(trend_rows, period)
    categories = sections.complaint_categories(t, category_rows, period, top_n)
    # Every department's KPIs travel as the attached CSV, as in the weekly report.
    department_table = None if department else sections.department_table(
        t, locale, this_month, department_rows, department_columns,
        f"departments-{period.label}.csv")
    ranking = sections.department_ranking(t, department_rows, department, top_n,
                                          this_month)
    breach_list = sections.breach_list(t, breaches, limit=0)
    scorecard = [{
        **tile,
        "year_ago": t.kpi_change(row["value"], year_ago.get(row["kpi_id"]), row["unit"]),
    } for tile, row in zip(sections.tiles(t, locale, this_month), this_month)]
    return {
        **sections.header(t, "monthly", period, department, data_as_of),
        "summary": sections.summary(t, locale, "month", this_month,
                                    [] if department else department_rows, categories,
                                    breach_list, trend_rows),
        "scorecard": scorecard,
        "trends": sections.trends(t, locale, this_month, trend_rows, period,
                                  sections.incomplete(period, data_as_of)),
        "categories": categories,
        "top_issues": categories["rows"][:TOP_ISSUES],
        "breach_steps": breach_list["by_step"],
        "breach_total": breach_list["total"],
        # A department's own report shows its own line and place, no other name.
        "ranking": ranking,
        "audits": sections.audit_table(t, this_month, department_rows, department, top_n),
        "closure": sections.closure(t, actions, department, data_as_of),
        "feedback": sections.feedback(t, locale, trend_rows, period, survey_comments,
                                      sections.incomplete(period, data_as_of)),
        "quality": sections.quality_panel(t, quality),
        "on_target_trend": sections.on_target_trend(t, trend_rows, period,
                                                    sections.incomplete(period, data_as_of)),
        "attachments": [department_table["attachment"]]
        if department_table and department_table["attachment"] else [],
        # The appendix names the attached file rather than printing 200 rows.
        "appendix": {"departments": department_table and department_table["attachment"]
                     and department_table["attachment"]["name"],
                     "categories": categories["appendix"],
                     "ranking": ranking and ranking["appendix"]},
    }
