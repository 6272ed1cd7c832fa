"""A hand-made data set for the rectification loop, eight ISO weeks of 2026
(W1 = 3–9 August ... W8 = 21–27 September; Asia/Shanghai).

Each department has four tickets a week (Monday to Thursday, 10:00). In a green week all
four are answered within 10 minutes (RESP_SLA 100 %); in a red week two are answered
after 60 minutes (50 %, below the amber band 95–98 %).

    week         W1 W2 W3 W4 W5 W6 W7 W8
    d_x          R  R  R  G  G  R  R  G
    d_y          G  G  R  R  R  R  G  G
    d_ok         G  G  G  G  G  G  G  G

Also: an urgent complaint of d_y classified 90 minutes after it was received
(5 August 10:00; due 10:30, 60 minutes late at 11:30), every other step on time; and a
process audit of d_x on 12 August scoring 6 + 7 + 7 = 20 (the TPS target is 24), one of
d_ok scoring 27.

What the rules (RESP_SLA by department, 2 red weeks in a row; urgent breaches 60
minutes late; failed audits; due in 5 working days; verified after 2 green weeks) must
make of it, worked out by hand with China's 2026 calendar (25 September a holiday,
Sunday 20 September a working day) — see tests/test_actions.py.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

from servicepulse.actions import store, tracking
from servicepulse.settings import Settings
from servicepulse.warehouse import connected
from tests.known_answers import CUSTOMERS
from tests.kpi_harness import SHANGHAI

FIRST_MONDAY = date(2026, 8, 3)
WEEKS = 8
PATTERN = {"d_x": "RRRGGRRG", "d_y": "GGRRRRGG", "d_ok": "GGGGGGGG"}
LAST_DAY = FIRST_MONDAY + timedelta(weeks=WEEKS) - timedelta(days=1)   # Sunday 27 September

TICKET_HEADER = ("ticket_id,customer_id,channel,service_type,department,agent_id,priority,"
                 "created_at,first_response_at,resolved_at,closed_at,contacts_to_resolve,"
                 "handle_seconds,status,promised_at,delivered_at,updated_at")

COMPLAINTS = """\
complaint_id,ticket_id,customer_id,category,severity,received_at,classified_at,dispatched_at,solution_at,resolved_at,callback_at,escalated_to,department,status,updated_at
PY1,,C1,billing,urgent,2026-08-05T10:00:00+08:00,2026-08-05T11:30:00+08:00,2026-08-05T11:40:00+08:00,2026-08-05T15:00:00+08:00,2026-08-06T10:00:00+08:00,2026-08-06T16:00:00+08:00,service_director,d_y,closed,2026-08-06T16:00:00+08:00
"""

SURVEYS = """\
response_id,ticket_id,complaint_id,customer_id,sent_at,answered_at,satisfaction,nps_score,attitude_score,speed_score,professionalism_score,comment,updated_at
S1,X-d_ok-0-0,,C1,2026-08-03T12:00:00+08:00,2026-08-03T13:00:00+08:00,5,10,5,5,5,,2026-08-03T13:00:00+08:00
"""

AUDITS = """\
audit_id,kind,department,agent_id,audited_at,score_1,score_2,score_3,updated_at
AU1,process_audit,d_x,A_d_x,2026-08-12T10:00:00+08:00,6,7,7,2026-08-12T12:00:00+08:00
AU2,process_audit,d_ok,A_d_ok,2026-08-12T11:00:00+08:00,9,9,9,2026-08-12T12:00:00+08:00
"""


def _tickets() -> str:
    lines = [TICKET_HEADER]
    for department, weeks in PATTERN.items():
        for week, colour in enumerate(weeks):
            monday = FIRST_MONDAY + timedelta(weeks=week)
            for n in range(4):
                day = monday + timedelta(days=n)
                late = colour == "R" and n < 2
                created = f"{day}T10:00:00+08:00"
                answered = f"{day}T{'11:00' if late else '10:10'}:00+08:00"
                resolved = f"{day}T15:00:00+08:00"
                lines.append(
                    f"X-{department}-{week}-{n},C1,phone,tech_support,{department},"
                    f"A_{department},general,{created},{answered},{resolved},,1,300,resolved,"
                    f",,{resolved}")
    return "\n".join(lines) + "\n"


def write(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    files = {"crm_customers.csv": CUSTOMERS, "crm_tickets.csv": _tickets(),
             "complaints.csv": COMPLAINTS, "surveys.csv": SURVEYS, "audits.csv": AUDITS}
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


RULES = {
    "kpi_rules": [{"kpis": ["RESP_SLA"], "dimensions": ["department"], "consecutive_red": 2}],
    "complaint_breaches": {"severities": ["urgent"], "min_minutes_late": 60},
    "audits": {},
    "due_working_days": 5,
    "verify_periods": 2,
    "app_url": "https://quality.example.com",
    "users": [
        {"username": "head.x", "name": "X 主管", "role": "department_head",
         "departments": ["d_x"], "email": "head.x@example.com"},
        {"username": "head.y", "name": "Y head", "role": "department_head",
         "departments": ["d_y"], "locale": "en", "email": "head.y@example.com"},
        {"username": "quality", "name": "质量部", "role": "quality_team"},
    ],
}
OVERRIDES = {"actions": RULES, "calendar.first_year": 2025, "calendar.last_year": 2027}
X_SUBJECT = "kpi:RESP_SLA:department:d_x:week"
Y_SUBJECT = "kpi:RESP_SLA:department:d_y:week"
# What people do, and when: before the night of that day runs.
PEOPLE = {
    date(2026, 8, 19): (X_SUBJECT, "head.x", "people", "新人多，<b>未培训</b>", "岗前培训"),
    date(2026, 9, 1): (Y_SUBJECT, "head.y", "method", "one queue for all", "a rota"),
}


def run_nights(settings: Settings, first: date, last: date, with_people: bool = True,
               order: int = 1) -> list[dict]:
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)][::order]
    summaries = []
    with connected(settings) as warehouse:
        for day in days:
            if with_people and day in PEOPLE:
                subject, who, group, cause, measure = PEOPLE[day]
                action_id = store.unclosed_action_of(settings, warehouse, subject)
                morning = datetime.combine(day, datetime.min.time(), SHANGHAI)
                store.record_work(settings, warehouse, action_id, who, group, cause, measure,
                                  at=morning + timedelta(hours=9))
                store.mark_done(settings, warehouse, action_id, who,
                                at=morning + timedelta(hours=10))
            summaries.append(tracking.track(settings, warehouse,
                                            day + timedelta(days=1)).summary())
    return summaries


def tracked_copy(built: Settings, folder: Path) -> Settings:
    """A private copy of the built data with every night of the eight weeks tracked."""
    from tests.conftest import settings_for

    shutil.copytree(built.output_path, folder / "output")
    shutil.copytree(built.sources_dir, folder / "sources")
    settings = settings_for(folder, folder / "sources", **OVERRIDES)
    run_nights(settings, FIRST_MONDAY, LAST_DAY)
    return settings


PASSWORD = "a long enough pass phrase"


def with_passwords(settings: Settings) -> Settings:
    """Every configured user of the app gets PASSWORD."""
    from servicepulse.actions import people

    with connected(settings) as warehouse:
        for user in settings.actions.users:
            people.set_password(settings, warehouse, user.username, PASSWORD)
    return settings


def unclosed_ids(settings: Settings) -> dict[str, str]:
    """Subject key -> id of its action that is not yet verified."""
    with connected(settings) as warehouse:
        return {row["subject_key"]: row["action_id"]
                for row in store.actions(settings, warehouse, statuses=store.UNCLOSED)}
