"""Tell the data team, through every configured channel (delivery.notify), which checks
failed or warned and on which rows."""

from __future__ import annotations

from pathlib import Path

from servicepulse.delivery.alert import Alert
from servicepulse.quality.runner import QualityReport
from servicepulse.settings import Settings


def quality_alert(settings: Settings, report: QualityReport) -> Alert | None:
    """The notifier's alert for a report with failed or warning checks: once per layer,
    interval and set of failing checks (a re-run with the same failures is quiet, a
    new failure or another interval alerts again)."""

    failures, warnings = report.critical_failures, report.warnings
    if not (failures or warnings):
        return None
    verdict = (f"{len(failures)} critical check(s) failed: reports for this interval are held"
               if failures else f"{len(warnings)} warning(s): reports go out with a note")
    interval = f"{report.interval[0]} – {report.interval[1]}"
    checks = [(sev, c) for sev, cs in (("CRITICAL", failures), ("warning", warnings))
              for c in cs]
    first_severity, first = checks[0]
    names = ",".join(sorted(f"{c.suite}.{c.check}" for _, c in checks))
    suffix = "" if report.layer == "all" else f"-{report.layer}"
    return Alert(
        kind="data_quality", what=f"data-quality checks ({report.layer})", interval=interval,
        first_error=f"{first_severity}: {first.suite}.{first.check}: {first.describe()}",
        details=(verdict, f"Run {report.run_id}; full result: {report.result_file}",
                 *(f"{sev}: {c.suite}.{c.check}: {c.describe()}" for sev, c in checks[1:])),
        next_step=("Fix the data at its source, then re-run the interval "
                   "(servicepulse run --date …); the reports then go out normally."),
        severity="critical" if failures else "warning",
        dedupe_key=f"data_quality|{report.layer}|{interval}|{names}",
        stem=f"data-quality-{report.run_id}{suffix}",
        subject=f"[ServicePulse data quality] {verdict} ({interval})")


def write_alert(settings: Settings, report: QualityReport) -> Path | str | None:
    """Alert the data team through the notifier (every configured channel: e-mail
    through delivery.transport, webhooks). With the outbox transport the e-mail is the
    .eml under output/outbox/alerts/ (returned); otherwise a summary per channel."""
    from servicepulse.delivery.notify import notify

    alert = quality_alert(settings, report)
    if alert is None:
        return None
    delivered = notify(settings, alert)
    if not delivered.outcomes:
        return None
    path = settings.output_path / "outbox" / "alerts" / f"{alert.stem}.eml"
    if settings.delivery.transport == "outbox" and path.exists():
        return path
    return ", ".join(f"{name}: {outcome}" for name, outcome in delivered.outcomes.items())
