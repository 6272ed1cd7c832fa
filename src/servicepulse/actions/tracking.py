"""The nightly step of the rectification loop, after the marts passed their checks.

A night knows the data up to ``as_of`` (the local date its interval ends on: periods
that end before it are complete). It

1. finds what the rules in ``settings.actions`` call findings, among those the data
   first showed within the last ``lookback_days``:
   - a KPI slice (the organisation, a department) red for ``consecutive_red`` periods
     in a row, found the day after the last of them ended;
   - a complaint step breached by at least ``min_minutes_late``, found when it became
     that late;
   - a failed process audit or mystery-shopper visit, found on its day;
2. records each finding once (its key), joining the subject's action that is not yet
   verified, or opening one: owned by the department, due ``due_working_days`` working
   days (business calendar) after it was found;
3. verifies every done action on its KPI slice: green in the ``verify_periods``
   complete periods after the done date -> verified; off target (amber or red) in one
   of them first -> reopened, due again. Periods where the KPI is not measured are
   not evidence either way.

Every date it writes comes from the data (a period's end, a breach's deadline), never
from the clock, and every finding has a key: re-running nights, in any order, changes
nothing already written. Nights are meant to run in date order (a backfill does): a
finding joins the subject's action that is unclosed when it is recorded.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd

from servicepulse.actions import store
from servicepulse.errors import UserError
from servicepulse.kpis import kpi_definitions
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse

KPI_TABLES = {"week": "kpi_weekly", "month": "kpi_monthly"}
GRAIN_WORDS = {"week": "weeks", "month": "months"}


class UnknownKpiInRules(UserError):
    """A rule in settings.actions names a KPI the catalogue does not define."""


@dataclass
class TrackResult:
    as_of: date
    findings: int = 0
    opened: list[str] = field(default_factory=list)
    joined: int = 0
    verified: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "new_findings": self.findings,
                "opened": self.opened, "joined_open_actions": self.joined,
                "verified": self.verified, "reopened": self.reopened}


def _marts(settings: Settings, name: str) -> str:
    return f'"{settings.warehouse.schema("marts")}"."{name}"'


def local_midnight(settings: Settings, day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=settings.tz)


def format_value(value: float | None, unit: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "fraction":
        return f"{value * 100:.1f} %"
    if unit == "minutes":
        return f"{value:.1f} min"
    if unit == "seconds":
        return f"{value:.0f} s"
    return f"{value:.1f}"


def _standard(definition: dict[str, Any], target: float | None) -> str | None:
    """The standard a KPI slice missed: its target in force in that period."""
    if target is None:
        return None
    sign = "≥" if definition["direction"] == "higher" else "≤"
    return f"{definition['kpi_id']} {sign} {format_value(target, definition['unit'])}"


def add_working_days(settings: Settings, warehouse: Warehouse, day: date, days: int) -> date:
    """The working day ``days`` working days after ``day`` (the business calendar)."""
    dates = _marts(settings, "dim_dates")
    frame = warehouse.fetch_frame(
        f"select min(calendar_date) as due from {dates} where is_working_day and "
        f"working_day_index = (select working_day_index from {dates} "
        "where calendar_date = ?) + ?", [day, days])
    due = frame["due"].iloc[0]
    if due is None or pd.isna(due):
        raise UserError(f"the business calendar (marts.dim_dates) does not reach {days} working "
                        f"days after {day}: extend calendar.last_year")
    return pd.Timestamp(due).date()


def track(settings: Settings, warehouse: Warehouse, as_of: date) -> TrackResult:
    rules = settings.actions
    store.ensure_tables(settings, warehouse)
    definitions = kpi_definitions(settings, warehouse)
    wanted = {kpi for rule in rules.kpi_rules for kpi in rule.kpis}
    unknown = sorted(wanted - set(definitions))
    if unknown:
        raise UnknownKpiInRules(f"settings actions.kpi_rules name KPIs the catalogue does not "
                                f"define: {', '.join(unknown)} (see docs/kpis.md)")
    result = TrackResult(as_of)
    series = _Series(settings, warehouse, as_of)
    earliest = as_of - timedelta(days=rules.lookback_days)
    found = [*_kpi_findings(settings, series, definitions),
             *_breach_findings(settings, warehouse, as_of),
             *_audit_findings(settings, warehouse, as_of)]
    # Two rules may find the same thing (a KPI slice in both): it is one finding.
    unique = {f["finding_key"]: f for f in reversed(found)
              if earliest <= f["found_on"] <= as_of}
    found = sorted(unique.values(), key=lambda f: (f["found_on"], f["finding_key"]))
    known = store.known_finding_keys(settings, warehouse, [f["finding_key"] for f in found])
    # A KPI period is found at the midnight after it ends, a breach when it became late
    # enough, an audit when it took place: the data's moments, never the clock's.
    for finding in found:
        if finding["finding_key"] in known:
            continue
        result.findings += 1
        found_at = finding["found_at"]
        action_id = store.unclosed_action_of(settings, warehouse, finding["subject_key"])
        if action_id is None:
            action_id = _action_id(finding)
            store.open_action(settings, warehouse, store.NewAction(
                action_id=action_id, subject_key=finding["subject_key"],
                finding_kind=finding["finding_kind"], dimension=finding["dimension"],
                dimension_value=finding["dimension_value"], grain=finding["grain"],
                department=finding["department"],
                owner=rules.owner_of(finding["department"]),
                problem=finding["problem"], problem_zh=finding.get("problem_zh"),
                standard=finding.get("standard"),
                opened_at=found_at,
                due_on=add_working_days(settings, warehouse, finding["found_on"],
                                        rules.due_working_days),
                kpi_id=finding.get("kpi_id"), complaint_id=finding.get("complaint_id"),
                audit_id=finding.get("audit_id"), step=finding.get("step")))
            result.opened.append(action_id)
        else:
            result.joined += 1
        store.record_finding(settings, warehouse, finding, action_id, found_at)
    _verify(settings, warehouse, series, result)
    return result


def _action_id(finding: dict[str, Any]) -> str:
    digest = hashlib.sha256(finding["finding_key"].encode()).hexdigest()[:6]
    return f"CA-{finding['found_on']:%Y%m%d}-{digest}"


class _Series:
    """The statuses of the KPI slices (organisation, departments) of KPIs with a target,
    in complete periods; read once per grain and night."""

    def __init__(self, settings: Settings, warehouse: Warehouse, as_of: date) -> None:
        self.settings, self.warehouse, self.as_of = settings, warehouse, as_of
        self._frames: dict[str, pd.DataFrame] = {}
        self._slices: dict[str, dict[tuple[str, str, str], pd.DataFrame]] = {}

    def frame(self, grain: str) -> pd.DataFrame:
        if grain not in self._frames:
            frame = self.warehouse.fetch_frame(
                f"select kpi_id, dimension, dimension_value, period_start, period_end, "
                f"value, target, status from {_marts(self.settings, KPI_TABLES[grain])} "
                "where dimension in ('organisation', 'department') and target is not null "
                "and period_end < ? "
                "order by kpi_id, dimension, dimension_value, period_start", [self.as_of])
            for column in ("period_start", "period_end"):
                frame[column] = pd.to_datetime(frame[column]).dt.date
            self._frames[grain] = frame
            self._slices[grain] = {
                key: rows for key, rows in frame.groupby(
                    ["kpi_id", "dimension", "dimension_value"], sort=True)}
        return self._frames[grain]

    def slices(self, grain: str) -> dict[tuple[str, str, str], pd.DataFrame]:
        self.frame(grain)
        return self._slices[grain]

    def slice(self, grain: str, kpi_id: str, dimension: str, value: str) -> pd.DataFrame:
        empty = self.frame(grain).iloc[0:0]
        return self.slices(grain).get((kpi_id, dimension, value), empty)


def _kpi_findings(settings: Settings, series: _Series,
                  definitions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    findings = []
    for rule in settings.actions.kpi_rules:
        for (kpi_id, dimension, value), rows in series.slices(rule.grain).items():
            if kpi_id not in rule.kpis or dimension not in rule.dimensions:
                continue
            streak, previous_end = 0, None
            for row in rows.itertuples(index=False):
                adjacent = previous_end is not None and \
                    row.period_start == previous_end + timedelta(days=1)
                streak = (streak + 1 if adjacent else 1) if row.status == "red" else 0
                previous_end = row.period_end
                if streak < rule.consecutive_red:
                    continue
                department = value if dimension == "department" \
                    else settings.actions.organisation_department
                definition = definitions[kpi_id]
                subject = f"kpi:{kpi_id}:{dimension}:{value}:{rule.grain}"
                slice_words = "the organisation" if dimension == "organisation" \
                    else f"department {value}"
                findings.append({
                    "finding_key": f"{subject}:{row.period_start.isoformat()}",
                    "subject_key": subject, "finding_kind": "kpi_off_target",
                    "kpi_id": kpi_id, "dimension": dimension, "dimension_value": value,
                    "department": department, "grain": rule.grain,
                    "period_start": row.period_start, "period_end": row.period_end,
                    "found_on": row.period_end + timedelta(days=1),
                    "found_at": local_midnight(settings, row.period_end + timedelta(days=1)),
                    "value": _number(row.value), "target": _number(row.target),
                    "standard": _standard(definition, _number(row.target)),
                    "problem": (f"{kpi_id} red in {slice_words} for {streak} "
                                f"{GRAIN_WORDS[rule.grain]} in a row: "
                                f"{format_value(_number(row.value), definition['unit'])} in the "
                                f"{rule.grain} of {row.period_start.isoformat()}"),
                    "problem_zh": (
                        f"{definition['name_zh']}（{kpi_id}）在"
                        f"{'全公司' if dimension == 'organisation' else '部门 ' + value + ' '}"
                        f"连续 {streak} {'周' if rule.grain == 'week' else '个月'}未达标："
                        f"{row.period_start.isoformat()} 起的"
                        f"{'一周' if rule.grain == 'week' else '一个月'}为 "
                        f"{format_value(_number(row.value), definition['unit'])}")})
    return findings


_ZH = {
    ("severity", "urgent"): "紧急", ("severity", "general"): "一般",
    ("audit", "process_audit"): "流程审核", ("audit", "mystery_shopper"): "神秘顾客",
}


def zh(kind: str, code: str | None) -> str:
    """The Chinese word for a code in a finding's text (the reports' catalogue for
    steps and complaint categories)."""
    from servicepulse.reports.i18n import Messages

    if (kind, code) in _ZH:
        return _ZH[(kind, code)]
    words = Messages("zh-CN")
    if kind == "category":
        return words.category(code)
    if kind == "step":
        return words(f"step_{code}").split("（")[0]
    return code or ""


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _breach_findings(settings: Settings, warehouse: Warehouse,
                     as_of: date) -> list[dict[str, Any]]:
    rule = settings.actions.complaint_breaches
    if rule is None:
        return []
    as_of_moment = datetime.combine(as_of, time())  # local wall clock, as the mart's
    threshold = timedelta(minutes=rule.min_minutes_late)
    params: list[Any] = [*rule.severities, as_of_moment - threshold]
    steps = ""
    if rule.steps:
        steps = f" and step in ({', '.join('?' for _ in rule.steps)})"
        params += rule.steps
    frame = warehouse.fetch_frame(
        "select complaint_id, step, kpi_id, department, severity, complaint_category, "
        f"due_at_local, done_at_local from {_marts(settings, 'fct_complaint_step_breaches')} "
        f"where severity in ({', '.join('?' for _ in rule.severities)}) "
        f"and due_at_local <= ?{steps}", params)
    findings = []
    for row in frame.itertuples(index=False):
        due = pd.Timestamp(row.due_at_local).to_pydatetime()
        done = None if pd.isna(row.done_at_local) else \
            pd.Timestamp(row.done_at_local).to_pydatetime()
        # Late by at least the threshold by the night's end (a step done later was still
        # undone then); what the finding says comes from the data alone, whichever
        # night records it: done N minutes late, or not done.
        late_by_then = (min(done, as_of_moment) if done else as_of_moment) - due
        if late_by_then <= timedelta(0) or late_by_then < threshold:
            continue
        late = (done - due) if done else None
        subject = f"breach:{row.complaint_id}:{row.step}"
        minutes = f"{late.total_seconds() / 60:.0f}" if late is not None else ""
        done_words = f"done {minutes} min late" if late is not None else "not done"
        done_words_zh = f"超时 {minutes} 分钟完成" if late is not None else "尚未完成"
        findings.append({
            "finding_key": subject, "subject_key": subject,
            "finding_kind": "complaint_step_breach", "kpi_id": row.kpi_id,
            "complaint_id": row.complaint_id, "step": row.step,
            "dimension": "department", "dimension_value": row.department,
            "department": row.department, "grain": settings.actions.verify_grain,
            "found_on": (due + threshold).date(),
            "found_at": (due + threshold).replace(tzinfo=settings.tz),
            "value": round(late.total_seconds() / 60, 1) if late is not None else None,
            "target": None,
            "standard": f"{row.step} step on time ({row.kpi_id})",
            "problem": (f"complaint {row.complaint_id} ({row.severity}, "
                        f"{row.complaint_category}): {row.step} step due "
                        f"{due:%Y-%m-%d %H:%M}, {done_words}"),
            "problem_zh": (f"投诉 {row.complaint_id}（{zh('severity', row.severity)}，"
                           f"{zh('category', row.complaint_category)}）："
                           f"{zh('step', row.step)}环节应于 {due:%Y-%m-%d %H:%M} 前完成，"
                           f"{done_words_zh}")})
    return findings


def _audit_findings(settings: Settings, warehouse: Warehouse,
                    as_of: date) -> list[dict[str, Any]]:
    rule = settings.actions.audits
    if rule is None:
        return []
    frame = warehouse.fetch_frame(
        "select audit_id, audit_kind, kpi_id, department, agent_id, audited_at_local, "
        f"total_score, pass_score from {_marts(settings, 'fct_audits')} "
        f"where not is_passed and audit_kind in ({', '.join('?' for _ in rule.kinds)}) "
        "and audited_at_local < ?", [*rule.kinds, datetime.combine(as_of, time())])
    findings = []
    for row in frame.itertuples(index=False):
        audited = pd.Timestamp(row.audited_at_local).to_pydatetime()
        subject = f"audit:{row.audit_id}"
        kind = row.audit_kind.replace("_", " ")
        findings.append({
            "finding_key": subject, "subject_key": subject,
            "finding_kind": "failed_audit", "kpi_id": row.kpi_id, "audit_id": row.audit_id,
            "dimension": "department", "dimension_value": row.department,
            "department": row.department, "grain": settings.actions.verify_grain,
            "found_on": audited.date(), "found_at": audited.replace(tzinfo=settings.tz),
            "value": _number(row.total_score),
            "target": _number(row.pass_score),
            "standard": f"{row.kpi_id} ≥ {format_value(_number(row.pass_score), 'score')}",
            "problem": (f"{kind} {row.audit_id} of agent {row.agent_id} on "
                        f"{audited:%Y-%m-%d}: {format_value(_number(row.total_score), 'score')}"
                        f" of 30, below {format_value(_number(row.pass_score), 'score')}"),
            "problem_zh": (f"{zh('audit', row.audit_kind)} {row.audit_id}（坐席 {row.agent_id}，"
                           f"{audited:%Y-%m-%d}）：得分 "
                           f"{format_value(_number(row.total_score), 'score')}/30，低于 "
                           f"{format_value(_number(row.pass_score), 'score')}")})
    return findings


def _verify(settings: Settings, warehouse: Warehouse, series: _Series,
            result: TrackResult) -> None:
    rules = settings.actions
    for current in store.actions(settings, warehouse, statuses=(store.DONE,)):
        if not current["kpi_id"]:
            continue
        done_on = current["done_at"].astimezone(settings.tz).date()
        rows = series.slice(current["grain"], current["kpi_id"], current["dimension"],
                            current["dimension_value"])
        rows = rows[(rows["period_start"] > done_on) & rows["status"].notna()]
        greens: list[str] = []
        for row in rows.itertuples(index=False):
            on = row.period_end + timedelta(days=1)
            evidence = {"kpi_id": current["kpi_id"], "grain": current["grain"],
                        "periods_on_target": greens + ([row.period_start.isoformat()]
                                                       if row.status == "green" else [])}
            if row.status != "green":
                store.reopen(settings, warehouse, current["action_id"], store.SYSTEM_ACTOR,
                             f"{current['kpi_id']} {row.status} in the {current['grain']} of "
                             f"{row.period_start.isoformat()} after the action was done",
                             add_working_days(settings, warehouse, on, rules.due_working_days),
                             at=local_midnight(settings, on),
                             evidence={**evidence, "off_target_period":
                                       row.period_start.isoformat(), "status": row.status,
                                       "value": _number(row.value)})
                result.reopened.append(current["action_id"])
                break
            greens.append(row.period_start.isoformat())
            if len(greens) >= rules.verify_periods:
                store.verify(settings, warehouse, current["action_id"],
                             local_midnight(settings, on), evidence)
                result.verified.append(current["action_id"])
                break
