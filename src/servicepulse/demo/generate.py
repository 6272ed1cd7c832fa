"""Deterministic demo data: the five sources of the KPI catalogue as plain CSV files.

The data is made to look like a real service organisation, because a demo on
uniform noise hides every bug that matters:

* weekday and hour-of-day seasonality, and a dip on Chinese public holidays;
* departments and agents that differ in speed and quality;
* SLA breaches, tickets never answered, complaints that miss step deadlines;
* survey non-response;
* late-arriving rows (``updated_at`` days after the event), corrected rows
  (same id, later ``updated_at``, changed value) and rows delivered twice.

Rows describe each record as known at the end of the generated window: an event
after that moment has not happened yet, so the record is still open.
Same seed, same arguments -> byte-identical files.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays as holiday_calendars
import numpy as np
import pandas as pd

DEPARTMENTS = {
    # code: (speed factor: >1 is slower, quality: probability-ish of a good outcome)
    "bj_call_centre": (0.8, 0.93),
    "sh_call_centre": (1.0, 0.90),
    "after_sales": (1.4, 0.84),
    "field_service": (1.8, 0.80),
    "online_support": (0.6, 0.91),
}
AGENTS_PER_DEPARTMENT = 8
CHANNELS = (["phone", "email", "online", "onsite"], [0.45, 0.15, 0.32, 0.08])
SERVICE_TYPES = (["tech_support", "installation", "after_sales", "consultation", "delivery"],
                 [0.35, 0.12, 0.23, 0.20, 0.10])
CUSTOMER_TYPES = (["enterprise", "individual", "government"], [0.35, 0.55, 0.10])
SERVICE_LEVELS = (["basic", "standard", "advanced"], [0.5, 0.35, 0.15])
REGIONS = ["north", "east", "south", "central", "southwest", "northeast"]
COMPLAINT_CATEGORIES = (["product_quality", "service_attitude", "delivery_delay", "billing",
                         "technical_fault", "other"], [0.24, 0.18, 0.16, 0.12, 0.22, 0.08])
# Relative ticket volume Monday..Sunday.
WEEKDAY_VOLUME = np.array([1.18, 1.10, 1.05, 1.02, 1.00, 0.55, 0.45])
# Relative ticket volume by local hour 0..23: office peaks at 10:00 and 15:00.
HOUR_VOLUME = np.array([0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 1.0, 2.2, 3.4, 3.8, 3.3,
                        2.0, 2.6, 3.4, 3.6, 3.0, 2.2, 1.4, 1.0, 0.8, 0.6, 0.4, 0.3])
HOLIDAY_VOLUME = 0.35
COMMENTS = [
    "", "", "", "", "响应很快，谢谢", "工程师很专业", "等待时间太长", "问题没有彻底解决",
    "Quick and friendly.", "Had to call twice.", "请回电 13812345678", "email me at li.wei@example.com",
]

TICKET_COLUMNS = ["ticket_id", "customer_id", "channel", "service_type", "department", "agent_id",
                  "priority", "created_at", "first_response_at", "resolved_at", "closed_at",
                  "contacts_to_resolve", "handle_seconds", "status", "promised_at",
                  "delivered_at", "updated_at"]
COMPLAINT_COLUMNS = ["complaint_id", "ticket_id", "customer_id", "category", "severity",
                     "received_at", "classified_at", "dispatched_at", "solution_at",
                     "resolved_at", "callback_at", "escalated_to", "department", "status",
                     "updated_at"]
SURVEY_COLUMNS = ["response_id", "ticket_id", "complaint_id", "customer_id", "sent_at",
                  "answered_at", "satisfaction", "nps_score", "attitude_score", "speed_score",
                  "professionalism_score", "comment", "updated_at"]
CUSTOMER_COLUMNS = ["customer_id", "name", "phone", "customer_type", "service_level", "region",
                    "created_at", "updated_at"]
AUDIT_COLUMNS = ["audit_id", "kind", "department", "agent_id", "audited_at", "score_1",
                 "score_2", "score_3", "updated_at"]


@dataclass(frozen=True)
class GenerationSpec:
    out: Path
    start: date
    days: int
    seed: int = 7
    tickets_per_day: int = 300
    timezone: str = "Asia/Shanghai"
    # Defect kind -> how many to inject (see DEFECTS), for testing the quality gate.
    defects: dict[str, int] = field(default_factory=dict)


def _agents() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(2024)  # agents are the same organisation for every seed
    for d_index, (department, (speed, quality)) in enumerate(DEPARTMENTS.items(), start=1):
        for a_index in range(1, AGENTS_PER_DEPARTMENT + 1):
            rows.append({
                "agent_id": f"A{d_index}{a_index:02d}",
                "department": department,
                "speed": speed * rng.uniform(0.7, 1.4),
                "quality": min(0.99, quality + rng.normal(0, 0.035)),
            })
    return pd.DataFrame(rows)


def _iso(values: pd.Series, tz: ZoneInfo) -> pd.Series:
    """ISO 8601 with the UTC offset of the reporting zone, empty where missing."""
    local = values.dt.tz_convert(tz)
    text = local.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    text = text.str.replace(r"(\d{2})(\d{2})$", r"\1:\2", regex=True)
    return text.where(values.notna(), "")


def _choice(rng: np.random.Generator, options: tuple[list[str], list[float]], n: int):
    names, weights = options
    return rng.choice(np.array(names, dtype=object), size=n, p=np.array(weights) / sum(weights))


def _minutes(values: np.ndarray) -> pd.TimedeltaIndex:
    return pd.to_timedelta(np.round(values * 60), unit="s")


def _business_days_after(starts: pd.Series, days: int, tz: ZoneInfo,
                         holiday_dates: list[date]) -> pd.Series:
    local = starts.dt.tz_convert(tz)
    day = local.dt.tz_localize(None).dt.normalize().values.astype("datetime64[D]")
    shifted = np.busday_offset(day, days, roll="forward",
                               holidays=np.array(holiday_dates, dtype="datetime64[D]"))
    time_of_day = local.dt.tz_localize(None) - local.dt.tz_localize(None).dt.normalize()
    return (pd.Series(pd.to_datetime(shifted), index=starts.index) + time_of_day).dt.tz_localize(
        tz).dt.tz_convert("UTC")


def generate(spec: GenerationSpec) -> dict[str, Path]:
    if spec.days < 1:
        raise ValueError("--days must be at least 1")
    if spec.tickets_per_day < 1:
        raise ValueError("--tickets-per-day must be at least 1")
    rng = np.random.default_rng(spec.seed)
    tz = ZoneInfo(spec.timezone)
    window_start = datetime.combine(spec.start, time(0), tz)
    as_of = pd.Timestamp(window_start + timedelta(days=spec.days)).tz_convert("UTC")
    years = range(spec.start.year - 1, (spec.start + timedelta(days=spec.days)).year + 2)
    cn_holidays = holiday_calendars.country_holidays("CN", years=years)
    holiday_dates = sorted(cn_holidays)

    agents = _agents()
    n_customers = max(50, spec.tickets_per_day * 2)
    customers = _customers(rng, n_customers, window_start, tz)

    tickets = _tickets(rng, spec, agents, customers, window_start, tz, holiday_dates)
    complaints = _complaints(rng, tickets, agents, customers, holiday_dates, tz)
    surveys = _surveys(rng, tickets, complaints, agents)
    audits = _audits(rng, spec, agents, window_start)

    tickets = _as_known_at(tickets, as_of, _TICKET_EVENTS)
    complaints = _as_known_at(complaints, as_of, _COMPLAINT_EVENTS)
    surveys = surveys[surveys["sent_at"] < as_of].copy()
    surveys.loc[surveys["answered_at"] >= as_of, _SURVEY_ANSWER_FIELDS] = np.nan
    surveys["updated_at"] = surveys[["sent_at", "answered_at"]].max(axis=1)
    audits = audits[audits["audited_at"] < as_of].copy()

    tickets = _late_and_corrected(rng, tickets, "ticket_id", as_of,
                                  lambda df: df.assign(contacts_to_resolve=(
                                      df["contacts_to_resolve"] + 1)))
    surveys = _late_and_corrected(rng, surveys, "response_id", as_of,
                                  lambda df: df.assign(satisfaction=np.where(
                                      df["satisfaction"].isna(), np.nan,
                                      np.clip(df["satisfaction"] - 1, 1, 5))))
    complaints = _late_and_corrected(rng, complaints, "complaint_id", as_of, lambda df: df)
    frames = {"tickets": tickets, "surveys": surveys, "complaints": complaints}
    defect_rng = np.random.default_rng(spec.seed + 7919)  # clean rows stay as without defects
    for kind, count in spec.defects.items():
        if kind not in DEFECTS:
            raise ValueError(f"unknown defect {kind!r}; known: {', '.join(DEFECTS)}")
        DEFECTS[kind](defect_rng, frames, count, as_of)
    tickets, surveys, complaints = frames["tickets"], frames["surveys"], frames["complaints"]

    spec.out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame, columns, key in (
        ("crm_customers.csv", customers, CUSTOMER_COLUMNS, "customer_id"),
        ("crm_tickets.csv", tickets, TICKET_COLUMNS, "ticket_id"),
        ("complaints.csv", complaints, COMPLAINT_COLUMNS, "complaint_id"),
        ("surveys.csv", surveys, SURVEY_COLUMNS, "response_id"),
        ("audits.csv", audits, AUDIT_COLUMNS, "audit_id"),
    ):
        written[name] = _write(spec.out / name, frame, columns, key, tz)
    return written


def _customers(rng, n, window_start, tz) -> pd.DataFrame:
    ids = [f"C{i:06d}" for i in range(1, n + 1)]
    surnames = np.array(list("王李张刘陈杨黄赵吴周"), dtype=object)
    given = np.array(["伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "军", "杰"], dtype=object)
    created = pd.Timestamp(window_start).tz_convert("UTC") - pd.to_timedelta(
        rng.integers(1, 3 * 365, n), unit="D")
    frame = pd.DataFrame({
        "customer_id": ids,
        "name": surnames[rng.integers(0, 10, n)] + given[rng.integers(0, 10, n)],
        "phone": [f"13{v:09d}" for v in rng.integers(0, 10**9, n)],
        "customer_type": _choice(rng, CUSTOMER_TYPES, n),
        "service_level": _choice(rng, SERVICE_LEVELS, n),
        "region": rng.choice(np.array(REGIONS, dtype=object), n),
        "created_at": created,
    })
    frame["updated_at"] = frame["created_at"]
    return frame


_TICKET_EVENTS = {
    "first_response_at": [],
    "resolved_at": ["contacts_to_resolve", "handle_seconds"],
    "closed_at": [],
    "delivered_at": [],
}
_COMPLAINT_EVENTS = {
    "classified_at": [], "dispatched_at": ["escalated_to"], "solution_at": [],
    "resolved_at": [], "callback_at": [],
}
_SURVEY_ANSWER_FIELDS = ["answered_at", "satisfaction", "nps_score", "attitude_score",
                         "speed_score", "professionalism_score", "comment"]


def _tickets(rng, spec, agents, customers, window_start, tz, holiday_dates) -> pd.DataFrame:
    days = pd.date_range(spec.start, periods=spec.days, freq="D")
    holiday_set = set(holiday_dates)
    factors = np.array([WEEKDAY_VOLUME[d.weekday()] *
                        (HOLIDAY_VOLUME if d.date() in holiday_set else 1.0) for d in days])
    counts = rng.poisson(spec.tickets_per_day * factors * rng.uniform(0.9, 1.1, len(days)))
    n = int(counts.sum())
    day_index = np.repeat(np.arange(len(days)), counts)
    hours = rng.choice(24, size=n, p=HOUR_VOLUME / HOUR_VOLUME.sum())
    seconds = day_index * 86400 + hours * 3600 + rng.integers(0, 3600, n)
    created = pd.Timestamp(window_start).tz_convert("UTC") + pd.to_timedelta(
        np.sort(seconds), unit="s")

    agent_rows = agents.iloc[rng.integers(0, len(agents), n)].reset_index(drop=True)
    speed = agent_rows["speed"].to_numpy()
    quality = agent_rows["quality"].to_numpy()
    priority = np.where(rng.random(n) < 0.15, "urgent", "general")
    urgent = priority == "urgent"
    off_hours = (hours < 8) | (hours >= 20)

    frt = rng.lognormal(mean=np.log(9.0), sigma=0.8, size=n) * speed
    frt = np.where(off_hours, frt * 4, frt)
    frt = np.where(urgent, frt * 0.6, frt)
    never_answered = rng.random(n) < 0.015
    first_response = pd.Series(created + _minutes(frt)).where(~never_answered)

    resolve_hours = rng.lognormal(mean=np.log(6.0), sigma=1.1, size=n) * speed
    unresolved = never_answered | (rng.random(n) < 0.02)
    resolved = pd.Series(created + _minutes(frt + resolve_hours * 60)).where(~unresolved)
    closed = resolved + pd.to_timedelta(rng.integers(1, 48, n), unit="h")

    contacts = np.where(rng.random(n) < quality, 1, rng.integers(2, 5, n))
    handle = np.round(rng.lognormal(np.log(420), 0.5, n) * speed * (1 + 0.3 * (contacts - 1)))

    service_type = _choice(rng, SERVICE_TYPES, n)
    is_delivery = service_type == "delivery"
    created_series = pd.Series(created)
    promised = _business_days_after(created_series, 3, tz, holiday_dates).where(is_delivery)
    delivery_days = rng.gamma(2.2, 1.2, n) * speed
    delivered = (created_series + pd.to_timedelta(np.round(delivery_days * 86400), unit="s")
                 ).where(is_delivery & ~unresolved)

    return pd.DataFrame({
        "ticket_id": [f"T{i:08d}" for i in range(1, n + 1)],
        "customer_id": customers["customer_id"].to_numpy()[rng.integers(0, len(customers), n)],
        "channel": _choice(rng, CHANNELS, n),
        "service_type": service_type,
        "department": agent_rows["department"],
        "agent_id": agent_rows["agent_id"],
        "priority": priority,
        "created_at": created_series,
        "first_response_at": first_response,
        "resolved_at": resolved,
        "closed_at": closed,
        "contacts_to_resolve": pd.array(contacts, dtype="Int64"),
        "handle_seconds": pd.array(handle.astype(int), dtype="Int64"),
        "promised_at": promised,
        "delivered_at": delivered,
        "_quality": quality,
    })


def _complaints(rng, tickets, agents, customers, holiday_dates, tz) -> pd.DataFrame:
    # Poor-quality agents and multi-contact tickets draw more complaints.
    risk = 0.008 + 0.08 * (1 - tickets["_quality"].to_numpy()) + 0.01 * (
        tickets["contacts_to_resolve"].fillna(1).to_numpy() > 1)
    from_ticket = tickets[rng.random(len(tickets)) < risk]
    n_orphan = max(1, len(from_ticket) // 10)  # complaints that reach us without a ticket
    orphan_rows = tickets.iloc[rng.integers(0, len(tickets), n_orphan)]
    n = len(from_ticket) + n_orphan
    base = pd.concat([from_ticket, orphan_rows], ignore_index=True)
    received = base["created_at"] + pd.to_timedelta(rng.integers(1800, 3 * 86400, n), unit="s")
    severity = np.where(rng.random(n) < 0.2, "urgent", "general")
    speed = np.where(base["department"].isin(["field_service", "after_sales"]), 1.6, 1.0)

    classified = received + _minutes(rng.lognormal(np.log(12), 0.7, n) * speed)
    dispatched = classified + _minutes(rng.lognormal(np.log(25), 0.7, n) * speed)
    solution = dispatched + _minutes(rng.lognormal(np.log(8 * 60), 0.8, n) * speed)
    resolved = solution + _minutes(rng.lognormal(np.log(36 * 60), 0.9, n) * speed)
    callback = resolved + _minutes(rng.lognormal(np.log(20 * 60), 0.9, n) * speed)
    never_called_back = rng.random(n) < 0.04
    escalated = np.where((severity == "urgent") & (rng.random(n) < 0.9), "service_director", None)
    return pd.DataFrame({
        "complaint_id": [f"P{i:07d}" for i in range(1, n + 1)],
        "ticket_id": list(from_ticket["ticket_id"]) + [None] * n_orphan,
        "customer_id": base["customer_id"],
        "category": _choice(rng, COMPLAINT_CATEGORIES, n),
        "severity": severity,
        "received_at": received,
        "classified_at": classified,
        "dispatched_at": dispatched,
        "solution_at": solution,
        "resolved_at": resolved,
        "callback_at": callback.where(~never_called_back),
        "escalated_to": escalated,
        "department": base["department"],
        "_quality": base["_quality"].to_numpy(),
    }).sort_values("received_at", kind="stable").reset_index(drop=True).assign(
        complaint_id=lambda df: [f"P{i:07d}" for i in range(1, len(df) + 1)])


def _surveys(rng, tickets, complaints, agents) -> pd.DataFrame:
    done_tickets = tickets[tickets["resolved_at"].notna() & (rng.random(len(tickets)) < 0.7)]
    done_complaints = complaints[complaints["resolved_at"].notna()]
    parts = [
        pd.DataFrame({"ticket_id": done_tickets["ticket_id"], "complaint_id": None,
                      "customer_id": done_tickets["customer_id"],
                      "sent_at": done_tickets["resolved_at"] + pd.Timedelta(hours=2),
                      "_quality": done_tickets["_quality"]}),
        pd.DataFrame({"ticket_id": None, "complaint_id": done_complaints["complaint_id"],
                      "customer_id": done_complaints["customer_id"],
                      "sent_at": done_complaints["resolved_at"] + pd.Timedelta(hours=4),
                      "_quality": done_complaints["_quality"] - 0.25}),
    ]
    frame = pd.concat(parts, ignore_index=True).sort_values("sent_at", kind="stable")
    frame = frame.reset_index(drop=True)
    n = len(frame)
    answered = rng.random(n) < 0.55
    answered_at = (frame["sent_at"] + pd.to_timedelta(rng.integers(300, 3 * 86400, n), unit="s")
                   ).where(answered)
    quality = frame["_quality"].to_numpy()
    satisfaction = np.clip(np.round(1 + 4 * quality + rng.normal(0, 0.75, n)), 1, 5)
    nps = np.clip(np.round((satisfaction - 1) * 2.5 + rng.normal(0.6, 1.3, n)), 0, 10)

    def dimension():
        return np.clip(np.round(satisfaction + rng.normal(0, 0.6, n)), 1, 5)

    frame = frame.assign(
        response_id=[f"S{i:08d}" for i in range(1, n + 1)],
        answered_at=answered_at,
        satisfaction=np.where(answered, satisfaction, np.nan),
        nps_score=np.where(answered & (rng.random(n) < 0.95), nps, np.nan),
        attitude_score=np.where(answered, dimension(), np.nan),
        speed_score=np.where(answered, dimension(), np.nan),
        professionalism_score=np.where(answered, dimension(), np.nan),
        comment=np.where(answered, rng.choice(np.array(COMMENTS, dtype=object), n), ""),
    )
    return frame


def _audits(rng, spec, agents, window_start) -> pd.DataFrame:
    rows = []
    audit_no = 0
    for week in range(0, spec.days, 7):
        for _, agent in agents.iterrows():
            if rng.random() > 0.35:
                continue
            audit_no += 1
            kind = "process_audit" if rng.random() < 0.6 else "mystery_shopper"
            scores = np.clip(np.round(rng.normal(10 * agent["quality"] - 1.2, 1.2, 3), 1), 0, 10)
            moment = pd.Timestamp(window_start).tz_convert("UTC") + pd.Timedelta(
                days=week + int(rng.integers(0, 5)), hours=int(rng.integers(1, 9)))
            rows.append({"audit_id": f"AU{audit_no:06d}", "kind": kind,
                         "department": agent["department"], "agent_id": agent["agent_id"],
                         "audited_at": moment, "score_1": scores[0], "score_2": scores[1],
                         "score_3": scores[2]})
    frame = pd.DataFrame(rows, columns=AUDIT_COLUMNS[:-1])
    frame["audited_at"] = pd.to_datetime(frame["audited_at"], utc=True)
    frame["updated_at"] = frame["audited_at"] + pd.Timedelta(hours=6)
    return frame


def _as_known_at(frame: pd.DataFrame, as_of: pd.Timestamp,
                 events: dict[str, list[str]]) -> pd.DataFrame:
    frame = frame.copy()
    for event, dependent in events.items():
        future = frame[event] >= as_of
        frame.loc[future, [event, *dependent]] = None
    first = "created_at" if "created_at" in frame else "received_at"
    frame["updated_at"] = frame[[first, *events]].max(axis=1)
    done = frame["closed_at" if "closed_at" in frame else "callback_at"].notna()
    frame["status"] = np.where(done, "closed", np.where(frame["resolved_at"].notna(),
                                                        "resolved", "open"))
    return frame


def _late_and_corrected(rng, frame, key, as_of, correct) -> pd.DataFrame:
    """Make a few rows late, a few corrected (two versions) and a few delivered twice."""
    frame = frame.copy()
    n = len(frame)
    late = rng.random(n) < 0.01
    delay = pd.to_timedelta(rng.integers(2 * 86400, 5 * 86400, n), unit="s")
    late_updated = frame["updated_at"] + delay
    frame["updated_at"] = frame["updated_at"].where(~(late & (late_updated < as_of)),
                                                    late_updated)

    corrected = (rng.random(n) < 0.006) & (frame["updated_at"] + pd.Timedelta(days=1) < as_of)
    # The first version is the wrong one; the correction arrives a day later.
    wrong = correct(frame[corrected])
    frame.loc[corrected, "updated_at"] = frame.loc[corrected, "updated_at"] + pd.Timedelta(days=1)
    twice = frame[rng.random(n) < 0.003]
    return pd.concat([frame, wrong, twice], ignore_index=True).sort_values(
        [key, "updated_at"], kind="stable").reset_index(drop=True)


def _single_version_rows(rng, frame, key, count, where=None):
    """``count`` random rows whose key occurs once (so one defect is one row)."""
    once = ~frame[key].duplicated(keep=False)
    if where is not None:
        once &= where
    candidates = frame.index[once]
    if len(candidates) < count:
        raise ValueError(f"cannot inject {count} defects: only {len(candidates)} candidates")
    return rng.choice(candidates, size=count, replace=False)


def _defect_satisfaction_range(rng, frames, count, as_of):
    surveys = frames["surveys"]
    rows = _single_version_rows(rng, surveys, "response_id", count,
                                surveys["satisfaction"].notna())
    surveys.loc[rows, "satisfaction"] = rng.integers(6, 10, count)


def _defect_time_order(rng, frames, count, as_of):
    tickets = frames["tickets"]
    rows = _single_version_rows(rng, tickets, "ticket_id", count, tickets["resolved_at"].notna())
    tickets.loc[rows, "resolved_at"] = tickets.loc[rows, "created_at"] - pd.Timedelta(hours=1)


def _defect_orphan_customer(rng, frames, count, as_of):
    tickets = frames["tickets"]
    rows = _single_version_rows(rng, tickets, "ticket_id", count)
    tickets.loc[rows, "customer_id"] = [f"C9{n:05d}" for n in range(count)]


def _defect_stale(rng, frames, count, as_of):
    """The ticket system stopped delivering 12 hours before the end (count: ignored)."""
    tickets = frames["tickets"]
    frames["tickets"] = tickets[tickets["updated_at"] < as_of - pd.Timedelta(hours=12)]


def _defect_volume_drop(rng, frames, count, as_of):
    """Four in five tickets created on the last day never arrive (count: ignored).
    Only tickets no complaint or survey names are dropped, so the defect is volume
    alone and no reference check fails with it."""
    tickets = frames["tickets"]
    referenced = set(frames["complaints"]["ticket_id"].dropna()) | set(
        frames["surveys"]["ticket_id"].dropna())
    last_day = tickets["created_at"] >= as_of - pd.Timedelta(days=1)
    dropped = last_day & ~tickets["ticket_id"].isin(referenced) & (
        rng.random(len(tickets)) < 0.8)
    frames["tickets"] = tickets[~dropped]


# name -> injector(rng, frames, count, as_of); each breaks exactly one check.
DEFECTS = {
    "satisfaction_range": _defect_satisfaction_range,   # raw_survey_responses.satisfaction_range
    "time_order": _defect_time_order,           # raw_crm_tickets.created_at_before_resolved_at
    "orphan_customer": _defect_orphan_customer,  # raw_crm_tickets.customer_id_references_...
    "stale": _defect_stale,                      # raw_crm_tickets.freshness
    "volume_drop": _defect_volume_drop,          # raw_crm_tickets.volume (a warning)
}


def parse_defects(text: str | None) -> dict[str, int]:
    """'time_order=3,stale' -> {'time_order': 3, 'stale': 1}"""
    defects: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, count = part.partition("=")
        if name not in DEFECTS:
            raise ValueError(f"unknown defect {name!r}; known: {', '.join(DEFECTS)}")
        try:
            defects[name] = int(count) if count else 1
        except ValueError:
            raise ValueError(f"defect {name!r}: count {count!r} is not a whole number") from None
    return defects


def _write(path: Path, frame: pd.DataFrame, columns: list[str], key: str, tz: ZoneInfo) -> Path:
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        values = frame[column] if column in frame else pd.Series(None, index=frame.index)
        if isinstance(values.dtype, pd.DatetimeTZDtype):
            out[column] = _iso(values, tz)
        elif pd.api.types.is_float_dtype(values.dtype):
            as_int = values.dropna()
            if len(as_int) and (as_int == np.round(as_int)).all() and not column.startswith(
                    "score_"):
                out[column] = values.astype("Int64").astype("string").fillna("")
            else:
                out[column] = values.map(lambda v: "" if pd.isna(v) else f"{v:g}")
        else:
            out[column] = values.astype("string").fillna("")
    out.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n",
               encoding="utf-8")
    return path
