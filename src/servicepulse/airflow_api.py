"""`servicepulse run` through a running Airflow: trigger the DAG run with Airflow's REST
API (v2) and follow its state until it ends.

Used when settings airflow_api.url names the API server of a deployment with a
scheduler. The run is an ordinary manual run: the scheduler runs its tasks on its
executor, the UI shows it as it happened, and its state comes from the API, never from
log text. Without a URL, `servicepulse run` runs the DAG in-process (airflow_runner).
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from servicepulse.errors import PermanentError, RetryableError, UserError
from servicepulse.settings import Settings

log = logging.getLogger(__name__)
ENDED = {"success", "failed"}
FAILED_TASK_STATES = {"failed", "upstream_failed"}


class AirflowApiUnreachable(RetryableError):
    """The API server did not answer (down, restarting, a network blip)."""


class AirflowApiRefused(UserError):
    """The API server refused the request: wrong credentials, an unknown or paused DAG,
    a run id already taken. The message says which and what to do."""


class AirflowRunFailed(PermanentError):
    """The triggered run ended failed; the message names the failed tasks and their logs."""


class AirflowRunStillGoing(RetryableError):
    """The run did not end within airflow_api.timeout_minutes; it is left running."""


class AirflowApi:
    def __init__(self, settings: Settings, environ: dict[str, str] | None = None) -> None:
        config = settings.airflow_api
        if not config.url:
            raise AirflowApiRefused("airflow_api.url is not set")
        self.url = config.url.rstrip("/")
        self.timeout = config.request_timeout_seconds
        environ = os.environ if environ is None else environ
        password = environ.get(config.password_env, "")
        if not password:
            raise AirflowApiRefused(
                f"airflow_api.url is set but {config.password_env} is empty: set it to the "
                f"password of the Airflow user {config.username!r}")
        self.token = self._token(config.username, password)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                 auth: bool = True) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")[:300]
            if exc.code >= 500:
                raise AirflowApiUnreachable(f"Airflow API {method} {path}: HTTP {exc.code} "
                                            f"{detail}") from None
            raise AirflowApiRefused(f"Airflow API {method} {path}: HTTP {exc.code} "
                                    f"{detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise AirflowApiUnreachable(f"the Airflow API at {self.url} does not answer "
                                        f"({getattr(exc, 'reason', exc)})") from None

    def _token(self, username: str, password: str) -> str:
        answer = self._request("POST", "/auth/token",
                               {"username": username, "password": password}, auth=False)
        return answer["access_token"]

    def dag(self, dag_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}")

    def trigger(self, dag_id: str, run_id: str, logical: datetime | None,
                interval: tuple[datetime, datetime] | None,
                conf: dict[str, Any] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"dag_run_id": run_id, "conf": conf or {},
                                "logical_date": logical.isoformat() if logical else None,
                                "note": "triggered by servicepulse run"}
        if interval:
            body.update(data_interval_start=interval[0].isoformat(),
                        data_interval_end=interval[1].isoformat())
        return self._request("POST", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns",
                             body)

    def run_at(self, dag_id: str, logical: datetime) -> dict[str, Any] | None:
        """The run of ``dag_id`` with this logical date, if there is one."""
        moment = urllib.parse.quote(logical.astimezone(UTC).isoformat())
        answer = self._request("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns"
                                      f"?logical_date_gte={moment}&logical_date_lte={moment}")
        runs = answer.get("dag_runs", [])
        return runs[0] if runs else None

    def clear(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Run an existing run again (what "Clear" does in the UI)."""
        return self._request("POST", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/"
                                     f"{urllib.parse.quote(run_id)}/clear", {"dry_run": False})

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/"
                                    f"{urllib.parse.quote(run_id)}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        answer = self._request("GET", f"/api/v2/dags/{urllib.parse.quote(dag_id)}/dagRuns/"
                                      f"{urllib.parse.quote(run_id)}/taskInstances")
        return answer.get("task_instances", [])

    def ui_url(self, dag_id: str, run_id: str, task_id: str | None = None) -> str:
        url = f"{self.url}/dags/{dag_id}/runs/{urllib.parse.quote(run_id)}"
        return f"{url}/tasks/{task_id}" if task_id else url


def trigger_and_follow(settings: Settings, dag_id: str, logical: datetime | None,
                       interval: tuple[datetime, datetime] | None, day_label: str,
                       conf: dict[str, Any] | None = None, log_dir: Path | None = None,
                       environ: dict[str, str] | None = None) -> tuple[str, Path]:
    """Trigger ``dag_id`` (for ``interval``, with ``logical`` as the scheduler would
    date it; None for a run that is not one of the schedule's) and wait for it to end.
    A night that already has a run is run again by clearing that run, as an operator
    would in the UI (Airflow keeps one run per logical date). Returns the final state and
    a record of the run (its tasks' states and log links) written under ``log_dir``.
    Raises AirflowRunFailed naming the failed tasks, AirflowRunStillGoing on timeout."""
    api = AirflowApi(settings, environ)
    dag = api.dag(dag_id)
    if dag.get("is_paused"):
        raise AirflowApiRefused(
            f"{dag_id} is paused in Airflow at {api.url}: a triggered run would wait "
            f"forever. Unpause it (airflow dags unpause {dag_id}, or the toggle in the UI)")
    started = datetime.now(UTC)
    existing = api.run_at(dag_id, logical) if logical else None
    if existing is not None:
        run_id = existing["dag_run_id"]
        if existing.get("state") not in ENDED:
            log.info("%s run %s for this night is %s: following it", dag_id, run_id,
                     existing.get("state"))
        else:
            api.clear(dag_id, run_id)
            log.info("%s run %s for this night cleared: it runs again (%s)", dag_id,
                     run_id, api.ui_url(dag_id, run_id))
    else:
        run_id = f"servicepulse__{day_label}__{started:%Y%m%dT%H%M%S%fZ}"
        api.trigger(dag_id, run_id, logical, interval, conf)
        log.info("triggered %s run %s through %s: %s", dag_id, run_id, api.url,
                 api.ui_url(dag_id, run_id))
    deadline = time.monotonic() + settings.airflow_api.timeout_minutes * 60
    state, last = "queued", None
    time.sleep(min(1.0, settings.airflow_api.poll_seconds))  # let the scheduler see it
    while True:
        try:
            run = api.run(dag_id, run_id)
        except AirflowApiUnreachable as exc:  # the API server restarting: keep following
            log.warning("%s; still following %s", exc, run_id)
            run = {"state": state}
        state = run.get("state") or state
        if state != last:
            log.info("%s %s: %s", dag_id, run_id, state)
            last = state
        if state in ENDED:
            break
        if time.monotonic() > deadline:
            raise AirflowRunStillGoing(
                f"{dag_id} run {run_id} is still {state} after "
                f"{settings.airflow_api.timeout_minutes:g} minutes; it is left running: "
                f"{api.ui_url(dag_id, run_id)}")
        time.sleep(settings.airflow_api.poll_seconds)
    tasks = api.task_instances(dag_id, run_id)
    record = _write_record(log_dir or settings.output_path / "runs", dag_id, day_label,
                           started, api, run_id, run, tasks)
    if state != "success":
        failed = [t for t in tasks if t.get("state") in FAILED_TASK_STATES]
        lines = [f"  {t['task_id']}: {t['state']} ({api.ui_url(dag_id, run_id, t['task_id'])})"
                 for t in failed]
        raise AirflowRunFailed(f"{dag_id} run {run_id} ended {state}; record: {record}\n"
                               + "\n".join(lines or ["  (no task failed: see the run)"]))
    return state, record


def _write_record(log_dir: Path, dag_id: str, day_label: str, started: datetime,
                  api: AirflowApi, run_id: str, run: dict[str, Any],
                  tasks: list[dict[str, Any]]) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{dag_id}-{day_label}-{started:%Y%m%dT%H%M%SZ}-{os.getpid()}.json"
    path.write_text(json.dumps({
        "run": {k: run.get(k) for k in ("dag_id", "dag_run_id", "state", "start_date",
                                        "end_date", "data_interval_start",
                                        "data_interval_end")},
        "url": api.ui_url(dag_id, run_id),
        "tasks": [{"task_id": t.get("task_id"), "state": t.get("state"),
                   "try_number": t.get("try_number"), "duration": t.get("duration"),
                   "log": api.ui_url(dag_id, run_id, t.get("task_id"))} for t in tasks],
    }, indent=1), encoding="utf-8")
    return path
