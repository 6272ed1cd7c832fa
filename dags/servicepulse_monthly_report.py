"""ServicePulse monthly leadership review (Airflow 3).

Runs when its data is ready, not on a blind timer:
- every time the nightly DAG's mart checks pass (the Asset
  servicepulse://quality/kpi_marts_checked), it sends the last
  complete month if that month is now checked and not yet delivered;
- every morning of the first ten days of a month at 10:00 (reporting time zone) it
  checks the deadline: the month's first working day in the business calendar (so
  1 October and the National Day holiday push it back, and a working weekend counts).
  Before it, nothing happens; from it on, the previous month goes out, or, if its data
  has not passed the quality gate, every recipient is told the review is delayed and
  the data team is alerted (the run fails, loudly).
Each recipient gets each month once (the send ledger), however often this runs.
Backfill / re-send: trigger with params, e.g. {"period": "2026-10"} or
{"period": "2026-10", "recipient": "a@example.com", "resend_reason": "lost it"}.
All logic lives in servicepulse.pipeline; servicepulse.dag_common.report_dag makes
both report DAGs; this file only says when.
"""

from __future__ import annotations

from servicepulse.dag_common import report_dag

# The first working day of a month is one of its first ten days even after the
# longest Chinese holiday; the step decides which.
MONTHLY_DEADLINE_CHECK = "0 10 1-10 * *"

servicepulse_monthly_report = report_dag("monthly", MONTHLY_DEADLINE_CHECK, "2026-10",
                                        __doc__)
