"""Glue between Airflow tasks and servicepulse.pipeline.

A bad delivery, a failed critical check or a missing font will be just as bad on
the next try: such errors fail the task at once (AirflowFailException) instead of
burning retries, and the data team is alerted (delivery.failure_alert). What is
worth a retry (a locked file, a network blip) says so by its class
(servicepulse.errors) and is left to the task's retries with backoff.
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
            raise  # the task's retries with backoff
        _alert_data_team(step, args, exc)
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _alert_data_team(step: Callable[..., Any], args: tuple[Any, ...],
                     error: BaseException) -> None:
    """The data team hears at once of a failure no retry will mend; an alert that
    cannot be sent is logged, and never hides the failure itself."""
    import logging
    from datetime import datetime

    from servicepulse.delivery.failure_alert import alert_permanent_failure
    from servicepulse.settings import load_settings

    what = " ".join([step.__name__, *(a for a in args if isinstance(a, str))][:2])
    moments = [a for a in args if isinstance(a, datetime)]
    interval = " – ".join(m.isoformat() for m in moments[:2]) or "this run"
    try:
        alert_permanent_failure(load_settings(), what, interval, error)
    except Exception:
        logging.getLogger(__name__).exception("the failure alert for %s could not be "
                                              "written", what)
