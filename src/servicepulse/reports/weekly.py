"""The weekly operations report's data: a pure function of mart rows.

Nothing here queries a database or computes a KPI; it selects, orders, formats and
words what the marts already say, so the same rows always give the same report.
Sections follow the catalogue's "Weekly operations report" in its order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from servicepulse.kpis import Period
from servicepulse.reports import sections
from servicepulse.reports.i18n import Messages
from servicepulse.reports.sections import QualitySnapshot


def build_weekly_report(period: Period, locale: str, department: str | None,
                        trend_rows: list[dict[str, Any]],
                        department_rows: list[dict[str, Any]],
                        agent_rows: list[dict[str, Any]],
                        category_rows: list[dict[str, Any]],
                        breaches: list[dict[str, Any]],
                        quality: QualitySnapshot | None,
                        data_as_of: datetime,
                        breach_limit: int, top_n: int = 10,
                        department_columns: int = 5,
                        actions: dict[str, Any] | None = None,
                        oldest_open: list[dict[str, Any]] | None = None,
                        survey_comments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the weekly template shows, already worded and formatted. Long
    dimensions show ``top_n`` lines (``department_columns`` departments in the
    department table) and "others"; the appendix holds them all (every department's
    KPIs as a CSV file attached to the PDF)."""
    t = Messages(locale)
    this_week = sections.headline(trend_rows, period)
    kpi_names = {r["kpi_id"]: sections.kpi_name(r, locale) for r in trend_rows}
    categories = sections.complaint_categories(t, category_rows, period, top_n)
    department_table = None if department else sections.department_table(
        t, locale, this_week, department_rows, department_columns,
        f"departments-{period.label}.csv")
    breach_list = sections.breach_list(t, breaches, breach_limit)
    return {
        **sections.header(t, "weekly", period, department, data_as_of),
        "summary": sections.summary(t, locale, "week", this_week,
                                    [] if department else department_rows, categories,
                                    breach_list, trend_rows),
        "tiles": sections.tiles(t, locale, this_week),
        "trends": sections.trends(t, locale, this_week, trend_rows, period,
                                  sections.incomplete(period, data_as_of)),
        "breaches": breach_list,
        "backlog": sections.backlog(t, trend_rows, period, oldest_open, data_as_of),
        "categories": categories,
        "department_table": department_table,
        "agents": sections.agent_table(t, agent_rows, kpi_names),
        "audits": sections.audit_table(t, this_week, department_rows, department, top_n),
        "actions": sections.corrective_actions(t, actions, period, data_as_of),
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
                     "categories": categories["appendix"], "ranking": None},
    }
