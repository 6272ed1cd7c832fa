"""Tell the data team, by e-mail, which checks failed or warned and on which rows."""

from __future__ import annotations

from email.message import EmailMessage
from html import escape
from pathlib import Path

from servicepulse.delivery.outbox import build_message, write_to_outbox
from servicepulse.quality.runner import QualityReport
from servicepulse.settings import Settings


def build_alert(settings: Settings, report: QualityReport) -> EmailMessage | None:
    failures, warnings = report.critical_failures, report.warnings
    if not (failures or warnings) or not settings.delivery.data_team:
        return None
    verdict = (f"{len(failures)} critical check(s) failed: reports for this interval are held"
               if failures else f"{len(warnings)} warning(s): reports go out with a note")
    subject = f"[ServicePulse data quality] {verdict} ({report.interval[0]} – {report.interval[1]})"
    lines = [verdict, (f"Run {report.run_id}, interval {report.interval[0]} – "
             f"{report.interval[1]}."), f"Full result: {report.result_file}", ""]
    rows = []
    for severity, checks in (("CRITICAL", failures), ("warning", warnings)):
        for check in checks:
            lines.append(f"{severity}: {check.suite}.{check.check}: {check.describe()}")
            rows.append(f"<tr><td>{severity}</td><td>{escape(check.suite)}.{escape(check.check)}"
                        f"</td><td>{escape(check.describe())}</td></tr>")
    lines += ["", ("Fix the data at its source, then re-run the interval "
              "(servicepulse run --date …); the reports then go out normally.")]
    html = ("<html><body style=\"font-family:Arial,sans-serif;font-size:14px\">"
            f"<p><b>{escape(verdict)}</b></p><p>{escape(lines[1])}</p>"
            "<table cellpadding=\"6\" style=\"border-collapse:collapse\">"
            "<tr><th align=\"left\">severity</th><th align=\"left\">check</th>"
            f"<th align=\"left\">what failed</th></tr>{''.join(rows)}</table>"
            f"<p>{escape(lines[-1])}</p></body></html>")
    return build_message(settings.delivery.sender,
                         [("", str(address)) for address in settings.delivery.data_team],
                         subject, html, "\n".join(lines),
                         identity=f"alert|{report.run_id}|{report.layer}")


def write_alert(settings: Settings, report: QualityReport) -> Path | None:
    message = build_alert(settings, report)
    if message is None:
        return None
    # One alert per layer: a run's raw checks and its mart checks may both warn.
    suffix = "" if report.layer == "all" else f"-{report.layer}"
    return write_to_outbox(settings.output_path / "outbox", ("alerts",),
                           f"data-quality-{report.run_id}{suffix}", message)
