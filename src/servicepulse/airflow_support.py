"""Glue between Airflow tasks and servicepulse.pipeline.

A bad delivery, a failed critical check or a missing font will be just as bad on
the next try: such errors fail the task at once (AirflowFailException) instead of
burning retries, and the data team is alerted (delivery.failure_alert, through
delivery.notify). What is worth a retry (a locked file, a network blip) says so by its
class (servicepulse.errors) and is left to the task's retries with backoff; after the
last one the DAGs' on_failure_callback (delivery.notify.task_failure_callback) alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def run_step(step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from airflow.sdk.exceptions import AirflowFailException

    from servicepulse.errors import is_retryable

    try:
        return step(*args, **kwargs)
    except Exception as exc:
        if is_retryable(exc):
            raise  # the task's retries with backoff; on_failure_callback after the last
        # An error that says the data team already heard of it (a report's finish step
        # failing because an earlier task failed) fails the task without a second alert.
        if not getattr(exc, "data_team_alerted", False):
            _alert_data_team(step, args, exc)
        failure = AirflowFailException(f"{type(exc).__name__}: {exc}")
        # The DAG's on_failure_callback sees this and does not alert a second time.
        failure.servicepulse_alerted = True  # type: ignore[attr-defined]
        raise failure from exc


def _task_context() -> Any:
    """The running task's Airflow context, or None outside a task."""
    try:
        from airflow.sdk import get_current_context

        return get_current_context()
    except Exception:  # noqa: BLE001 - not in a task, or Airflow is missing
        return None


def _alert_data_team(step: Callable[..., Any], args: tuple[Any, ...],
                     error: BaseException) -> None:
    """The data team hears at once of a failure no retry will mend (through every
    channel of delivery.notify, with the task's log URL when run by Airflow); an alert
    that cannot be sent is logged and kept pending, and never hides the failure."""
    import logging
    from datetime import datetime

    from servicepulse.delivery.alert import failure_key, interval_text
    from servicepulse.delivery.failure_alert import alert_permanent_failure
    from servicepulse.settings import load_settings

    what = " ".join([step.__name__, *(a for a in args if isinstance(a, str))][:2])
    moments = [a for a in args if isinstance(a, datetime)]
    interval = " – ".join(m.isoformat() for m in moments[:2]) or "this run"
    log_url, key = "", ""
    context = _task_context()
    if context is not None:
        ti = context.get("ti")
        log_url = str(getattr(ti, "log_url", "") or "")
        if not moments:
            interval = interval_text(context.get("data_interval_start"),
                                     context.get("data_interval_end"))
        if ti is not None:
            key = failure_key(ti.dag_id, ti.task_id, interval)
    try:
        alert_permanent_failure(load_settings(), what, interval, error, log_url=log_url,
                                dedupe_key=key)
    except Exception:
        logging.getLogger(__name__).exception("the failure alert for %s could not be "
                                              "written", what)
