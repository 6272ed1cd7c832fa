"""ServicePulse weekly operations report (Airflow 3).

Runs when its data is ready, not on a blind timer:
- every time the nightly DAG's mart checks pass (the Asset
  servicepulse://quality/kpi_marts_checked), it sends the last
  complete ISO week if that week is now checked and not yet delivered;
- at the deadline (Monday 10:00, reporting time zone) it sends the previous week, or,
  if that week's data has not passed the quality gate, tells every recipient the report
  is delayed and alerts the data team (the run fails, loudly).
Each recipient gets each week once (the send ledger), however often this runs.
Backfill / re-send: trigger with params, e.g. {"period": "2026-W45"} or
{"period": "2026-W47", "recipient": "a@example.com", "resend_reason": "lost it"}.
All logic lives in servicepulse.pipeline; servicepulse.dag_common.report_dag makes
both report DAGs; this file only says when.
"""

from __future__ import annotations

from servicepulse.dag_common import report_dag

# When readers expect the report; the data normally arrives hours before.
WEEKLY_DEADLINE = "0 10 * * 1"

servicepulse_weekly_report = report_dag("weekly", WEEKLY_DEADLINE, "2026-W47", __doc__)
