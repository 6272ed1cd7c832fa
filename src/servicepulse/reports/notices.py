"""Short group-chat messages about a report: it is out (with the organisation's headline
KPIs) or it is delayed (and why).

The reports themselves are sent by delivery.deliver, which also tells the data team of
sends that need attention; these go through delivery.notify to the channels of the
"reports" audience.
"""

from __future__ import annotations

import logging
from typing import Any

from servicepulse.delivery.alert import Alert
from servicepulse.delivery.deliver import DeliveryResult
from servicepulse.kpis import Period, kpi_rows
from servicepulse.reports.i18n import Messages
from servicepulse.reports.sections import not_measured, status_label, value_text
from servicepulse.settings import Settings

log = logging.getLogger(__name__)


def headline_lines(settings: Settings, warehouse: Any, period: Period) -> tuple[str, ...]:
    """The organisation's headline KPIs for ``period``, one line each in both languages,
    formatted as the reports format them (value, status, target from the marts, never
    recomputed here)."""
    zh, en = Messages("zh-CN"), Messages("en")
    lines = []
    for row in kpi_rows(settings, warehouse, period.kind, period.start, period.start):
        if row["report_section"] != "headline":
            continue
        if not_measured(row):
            status = " / ".join(t("status_not_measured") for t in (en, zh))
        else:
            status = " / ".join(status_label(t, row["status"], row["value"]) for t in (en, zh))
        target = ("" if row["target"] is None
                  else f", {en('col_target')} {en.kpi_value(row['target'], row['unit'])}")
        lines.append(f"{row['name_zh']} {row['name_en']}: {value_text(en, row)} "
                     f"({status}{target})")
    return tuple(lines)


def report_out(report: str, period: Period, delivery: DeliveryResult,
               headline: tuple[str, ...]) -> Alert:
    interval = f"{report} {period.label}"
    return Alert(
        kind="report_out", what=f"{report} report {period.label}", interval=interval,
        severity="info", audience="reports", dedupe_key=f"report_out|{interval}",
        subject=f"[ServicePulse] {report} report {period.label} is out / 报告已发布",
        details=(*headline, f"Delivered: {delivery.summary()}"))


def report_delayed(report: str, period: Period, reason: str) -> Alert:
    interval = f"{report} {period.label}"
    return Alert(
        kind="report_delayed", what=f"{report} report {period.label}", interval=interval,
        severity="warning", audience="reports", dedupe_key=f"report_delayed|{interval}",
        first_error=reason,
        next_step="It goes out by itself once the data pass the checks. / 数据通过检查后自动发送。",
        subject=f"[ServicePulse] {report} report {period.label} is delayed / 报告延迟")
