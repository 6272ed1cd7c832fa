"""Every failure reaches a person, through the configured channels, once.

``notify(settings, alert)`` is the one entry point for task failures, failed or
warning data checks, undeliverable or in-doubt sends and "report is out / delayed"
messages. For each channel of the alert's audience (settings.notifications):

- de-duplicated: an alert whose dedupe key (failure and interval) was already sent
  through a channel within notifications.dedupe_hours is not sent there again; a
  different failure or a different interval alerts again;
- rate-limited: at most notifications.max_per_channel_per_hour per channel; an alert
  over the limit waits as pending;
- retried: a rate-limited answer (HTTP 429, a vendor's rate-limit errcode) is tried
  again with backoff; an alert that still cannot be sent is logged at ERROR and kept
  pending under output/notifications/, and every later notify() call tries it again.

The state (sent keys, send times, pending alerts) is a JSON file under
output/notifications/, locked with fcntl: it works when the warehouse is what failed,
and holds across processes and Airflow workers on one machine.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from servicepulse.delivery.alert import (
    NEXT_STEP_RETRIES,
    Alert,
    failure_key,
    first_line,
    interval_text,
)
from servicepulse.settings import Settings

log = logging.getLogger(__name__)
PENDING_MAX_AGE_SECONDS = 7 * 24 * 3600


@dataclass
class Delivered:
    """What notify() did per channel: sent, duplicate, pending (with why)."""
    outcomes: dict[str, str] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes.values() if o.startswith(status))


def state_file(settings: Settings) -> Path:
    return settings.output_path / "notifications" / "state.json"


@contextmanager
def _state(settings: Settings) -> Iterator[dict[str, Any]]:
    path = state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                state = {}
            except ValueError:
                log.error("notification state %s is unreadable; starting afresh", path)
                state = {}
            state.setdefault("sent", {})
            state.setdefault("times", {})
            state.setdefault("pending", [])
            yield state
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=1, ensure_ascii=False), encoding="utf-8")
            tmp.replace(path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def notify(settings: Settings, alert: Alert, include_email: bool = True,
           environ: dict[str, str] | None = None) -> Delivered:
    """Send ``alert`` to every channel of its audience, once; then retry what is
    pending from earlier calls. Never raises for a channel's failure: it is logged at
    ERROR and kept pending."""
    config = settings.notifications
    names = list(config.audiences.get(alert.audience, []))
    if alert.audience == "data_team" and not names:
        names = ["email"]
    addresses = [str(a) for a in settings.delivery.data_team]
    result = Delivered()
    with _state(settings) as state:
        now = time.time()
        _forget_old(state, now, config.dedupe_hours * 3600)
        for name in names:
            if not include_email and _is_email(settings, name):
                continue
            sent_at = state["sent"].get(name, {}).get(alert.dedupe_key)
            if sent_at is not None:
                log.info("alert %s already sent through %s: not again", alert.dedupe_key,
                         name)
                result.outcomes[name] = "duplicate"
                continue
            if any(p["channel"] == name and p["alert"]["dedupe_key"] == alert.dedupe_key
                   for p in state["pending"]):
                result.outcomes[name] = "pending (already waiting)"
                continue
            if _is_email(settings, name) and not _email_addresses(settings, name):
                log.error("%s (%s) and no e-mail address for channel %s: nobody is told "
                          "by e-mail (set delivery.data_team)", alert.title(),
                          alert.first_error, name)
                result.outcomes[name] = "no addresses"
                continue
            result.outcomes[name] = _attempt(settings, state, name, alert, addresses,
                                             environ, now)
        _retry_pending(settings, state, addresses, environ, exclude=alert.dedupe_key)
    return result


def _is_email(settings: Settings, name: str) -> bool:
    channel = settings.notifications.channels.get(name)
    return channel.kind == "email" if channel else name == "email"


def _email_addresses(settings: Settings, name: str) -> list[str]:
    channel = settings.notifications.channels.get(name)
    return [str(a) for a in (channel.addresses if channel and channel.addresses
                             else settings.delivery.data_team)]


def _forget_old(state: dict[str, Any], now: float, window: float) -> None:
    for name, keys in state["sent"].items():
        state["sent"][name] = {k: t for k, t in keys.items() if now - t < window}
    for name, times in state["times"].items():
        state["times"][name] = [t for t in times if now - t < 3600]


def _attempt(settings: Settings, state: dict[str, Any], name: str, alert: Alert,
             addresses: list[str], environ: dict[str, str] | None, now: float) -> str:
    config = settings.notifications
    if len(state["times"].get(name, [])) >= config.max_per_channel_per_hour:
        why = (f"rate limit: {config.max_per_channel_per_hour} alerts per hour through "
               f"{name} reached")
        return _keep_pending(state, name, alert, why)
    try:
        reply = _send_with_retries(settings, name, alert, addresses, environ)
    except Exception as exc:  # noqa: BLE001 - an alert is never swallowed: kept pending
        return _keep_pending(state, name, alert, f"{type(exc).__name__}: {exc}")
    state["sent"].setdefault(name, {})[alert.dedupe_key] = time.time()
    state["times"].setdefault(name, []).append(time.time())
    log.info("alert %s sent through %s: %s", alert.dedupe_key, name, reply)
    return "sent"


def _send_with_retries(settings: Settings, name: str, alert: Alert, addresses: list[str],
                       environ: dict[str, str] | None) -> str:
    from servicepulse.delivery.channels import ChannelRateLimited, channel_for

    config = settings.notifications
    channel = channel_for(settings, name, addresses, environ)
    for attempt in range(1, config.max_attempts + 1):
        try:
            return channel.send(alert)
        except ChannelRateLimited as exc:
            if attempt == config.max_attempts:
                raise
            wait = config.retry_backoff_seconds * 2 ** (attempt - 1)
            if exc.retry_after is not None:
                wait = min(max(wait, exc.retry_after), 60)
            log.warning("%s: %s; trying again in %.1f s (attempt %d of %d)", name, exc,
                        wait, attempt, config.max_attempts)
            time.sleep(wait)
    raise AssertionError("unreachable")


def _keep_pending(state: dict[str, Any], name: str, alert: Alert, why: str) -> str:
    log.error("ALERT NOT SENT through %s: %s (%s). Kept pending; the next alert retries "
              "it. The alert: %s", name, why, alert.dedupe_key, alert.plain())
    entries = [p for p in state["pending"]
               if p["channel"] == name and p["alert"]["dedupe_key"] == alert.dedupe_key]
    if entries:
        entries[0]["attempts"] += 1
        entries[0]["last_error"] = why
    else:
        data = asdict(alert)
        data["details"] = list(alert.details)
        state["pending"].append({"channel": name, "alert": data, "attempts": 1,
                                 "first_seen": time.time(), "last_error": why})
    return f"pending ({why})"


def _retry_pending(settings: Settings, state: dict[str, Any], addresses: list[str],
                   environ: dict[str, str] | None, exclude: str = "") -> None:
    now = time.time()
    for entry in list(state["pending"]):
        name, data = entry["channel"], dict(entry["alert"])
        if data["dedupe_key"] in state["sent"].get(name, {}):
            state["pending"].remove(entry)  # sent meanwhile
            continue
        if data["dedupe_key"] == exclude:
            continue
        if now - entry["first_seen"] > PENDING_MAX_AGE_SECONDS:
            log.error("ALERT DROPPED after %d attempts over a week through %s: %s",
                      entry["attempts"], name, data)
            state["pending"].remove(entry)
            continue
        data["details"] = tuple(data.get("details", ()))
        alert = Alert(**data)
        if _attempt(settings, state, name, alert, addresses, environ, now) == "sent":
            state["pending"].remove(entry)
            log.warning("pending alert %s finally sent through %s", alert.dedupe_key, name)


def retry_pending(settings: Settings, environ: dict[str, str] | None = None) -> int:
    """Try every pending alert again; how many are still pending."""
    with _state(settings) as state:
        _retry_pending(settings, state, [str(a) for a in settings.delivery.data_team],
                       environ)
        return len(state["pending"])


# --- Airflow -----------------------------------------------------------------------

def task_failure_callback(context: Any) -> None:
    """on_failure_callback of every DAG: runs when a task has failed for good (after its
    last retry, or at once for AirflowFailException) and alerts the data team with the
    task, the data interval, the first error line and the task's log URL. A failure
    run_step already alerted is not alerted twice. Never raises."""
    try:
        error = context.get("exception")
        if getattr(error, "servicepulse_alerted", False):
            return
        ti = context.get("ti") or context.get("task_instance")
        dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
        task_id = getattr(ti, "task_id", "?")
        interval = interval_text(context.get("data_interval_start"),
                                 context.get("data_interval_end"))
        from servicepulse.settings import load_settings

        settings = load_settings()
        kind = type(error).__name__ if error else "failure"
        alert = Alert(kind="task_failure", what=f"{dag_id}.{task_id}", interval=interval,
                      first_error=f"{kind}: {first_line(error)}",
                      log_url=str(getattr(ti, "log_url", "") or ""),
                      next_step=NEXT_STEP_RETRIES,
                      dedupe_key=failure_key(dag_id, task_id, interval),
                      stem=f"failure-{dag_id}.{task_id}-{interval}",
                      subject=f"[ServicePulse] {dag_id}.{task_id} failed for {interval}: "
                              f"{kind}")
        notify(settings, alert)
    except Exception:
        log.exception("the failure alert could not be sent (logged instead)")


NEXT_STEP_DEADLINE = ("Open the run in Airflow: a task still running or queued (a stuck "
                      "source, a held warehouse lock, no free worker slot) holds it. Once "
                      "it ends, the reports go out by themselves; if it failed, its own "
                      "alert says why.")


async def nightly_deadline_missed(context: dict[str, Any] | None = None,
                                  hours: float | None = None, **_: Any) -> None:
    """The nightly's DeadlineAlert callback (run by Airflow's triggerer): the run has not
    finished ``hours`` after it was queued, so the data of its interval are not checked
    and its reports wait. Alerts the data team once per interval. Never raises."""
    import asyncio

    await asyncio.to_thread(deadline_missed, context or {}, hours)


def deadline_missed(context: dict[str, Any], hours: float | None) -> None:
    try:
        run = context.get("dag_run") or {}
        get = run.get if isinstance(run, dict) else (lambda k: getattr(run, k, None))
        dag_id = get("dag_id") or "servicepulse_nightly"
        interval = interval_text(get("data_interval_start"), get("data_interval_end"))
        late = f"{hours:g} h" if hours is not None else "its deadline"
        from servicepulse.settings import load_settings

        notify(load_settings(), Alert(
            kind="deadline", what=dag_id, interval=interval,
            first_error=f"run {get('run_id') or '?'} has not finished {late} after it was "
                        f"queued (state: {get('state') or 'unknown'})",
            next_step=NEXT_STEP_DEADLINE, severity="critical",
            dedupe_key=f"deadline|{dag_id}|{interval}",
            subject=f"[ServicePulse] {dag_id} for {interval} is not done by its deadline"))
    except Exception:
        log.exception("the deadline alert could not be sent (logged instead)")


__all__ = ["Delivered", "deadline_missed", "nightly_deadline_missed", "notify",
           "retry_pending", "task_failure_callback"]
