"""A hand-made data set whose KPIs were computed by hand (see the arithmetic in
test_known_answers.py). Local times are Asia/Shanghai (+08:00); a few are written in
UTC (Z) on purpose, where the UTC date or week differs from the local one."""

from pathlib import Path

CUSTOMERS = """\
customer_id,name,phone,customer_type,service_level,region,created_at,updated_at
C1,王伟,13800000001,enterprise,basic,east,2025-01-01T00:00:00+08:00,2025-01-01T00:00:00+08:00
C2,李娜,13800000002,individual,standard,north,2025-01-01T00:00:00+08:00,2025-01-01T00:00:00+08:00
"""

# T2 arrives twice: first with contacts_to_resolve 1, corrected a day later to 2.
# T5 is created Sunday 17:30 UTC = Monday 01:30 local (ISO week 47 locally).
# T6 is created in week 47 but resolved in week 48.
# Around China's National Day 2026 (1-7 October off, Saturday 10 October worked):
# T10 and T11 are deliveries, T10 without a promise (3 working days: Friday 9
# October), T11 promised 9 October 12:00 and delivered three hours late; T12 is
# resolved on 12 October and reopened the next day (its latest version is open).
TICKETS = """\
ticket_id,customer_id,channel,service_type,department,agent_id,priority,created_at,first_response_at,resolved_at,closed_at,contacts_to_resolve,handle_seconds,status,promised_at,delivered_at,updated_at
T0,C1,phone,tech_support,d_a,A1,general,2026-11-10T09:00:00+08:00,2026-11-10T09:05:00+08:00,2026-11-10T10:00:00+08:00,,1,300,resolved,,,2026-11-10T10:00:00+08:00
T1,C1,phone,tech_support,d_a,A1,general,2026-11-16T09:00:00+08:00,2026-11-16T09:20:00+08:00,2026-11-16T12:00:00+08:00,,1,600,resolved,,,2026-11-16T12:00:00+08:00
T2,C2,email,after_sales,d_a,A2,urgent,2026-11-16T10:00:00+08:00,2026-11-16T10:45:00+08:00,2026-11-17T10:00:00+08:00,,1,900,resolved,,,2026-11-17T10:00:00+08:00
T2,C2,email,after_sales,d_a,A2,urgent,2026-11-16T10:00:00+08:00,2026-11-16T10:45:00+08:00,2026-11-17T10:00:00+08:00,,2,900,resolved,,,2026-11-18T10:00:00+08:00
T3,C1,online,consultation,d_b,B1,general,2026-11-17T14:00:00+08:00,2026-11-17T14:30:00+08:00,2026-11-18T09:00:00+08:00,,1,400,resolved,,,2026-11-18T09:00:00+08:00
T4,C2,phone,installation,d_b,B2,general,2026-11-18T08:00:00+08:00,,,,,,open,,,2026-11-18T08:00:00+08:00
T5,C1,online,tech_support,d_a,A1,general,2026-11-15T17:30:00Z,2026-11-15T17:40:00Z,2026-11-16T03:00:00+08:00,,1,200,resolved,,,2026-11-16T03:00:00+08:00
T6,C2,phone,tech_support,d_b,B1,general,2026-11-22T23:30:00+08:00,2026-11-23T00:10:00+08:00,2026-11-23T08:00:00+08:00,,1,500,resolved,,,2026-11-23T08:00:00+08:00
T10,C1,onsite,delivery,d_b,B1,general,2026-09-29T10:00:00+08:00,2026-09-29T10:10:00+08:00,2026-10-09T20:00:00+08:00,,1,1200,resolved,,2026-10-09T20:00:00+08:00,2026-10-09T20:00:00+08:00
T11,C2,onsite,delivery,d_b,B2,general,2026-09-30T09:00:00+08:00,2026-09-30T09:20:00+08:00,2026-10-12T10:00:00+08:00,,1,1500,resolved,2026-10-09T12:00:00+08:00,2026-10-09T15:00:00+08:00,2026-10-12T10:00:00+08:00
T12,C1,phone,tech_support,d_a,A1,general,2026-10-12T09:00:00+08:00,2026-10-12T09:10:00+08:00,2026-10-12T15:00:00+08:00,,1,300,resolved,,,2026-10-12T15:00:00+08:00
T12,C1,phone,tech_support,d_a,A1,general,2026-10-12T09:00:00+08:00,2026-10-12T09:10:00+08:00,,,,,open,,,2026-10-13T09:00:00+08:00
"""

COMPLAINTS = """\
complaint_id,ticket_id,customer_id,category,severity,received_at,classified_at,dispatched_at,solution_at,resolved_at,callback_at,escalated_to,department,status,updated_at
P1,T2,C2,service_attitude,urgent,2026-11-17T09:00:00+08:00,2026-11-17T09:10:00+08:00,2026-11-17T09:40:00+08:00,2026-11-17T15:00:00+08:00,2026-11-18T10:00:00+08:00,,service_director,d_a,resolved,2026-11-18T10:00:00+08:00
P2,,C1,billing,general,2026-11-22T20:00:00+08:00,2026-11-22T20:20:00+08:00,,,,,,d_b,open,2026-11-22T20:20:00+08:00
P3,,C1,other,general,2026-11-23T01:00:00+08:00,,,,,,,d_a,open,2026-11-23T01:00:00+08:00
P4,,C1,product_quality,general,2026-09-30T10:00:00+08:00,2026-09-30T10:20:00+08:00,2026-09-30T11:00:00+08:00,2026-10-01T09:00:00+08:00,2026-10-13T18:00:00+08:00,2026-10-15T10:00:00+08:00,,d_b,closed,2026-10-15T10:00:00+08:00
P5,,C2,delivery_delay,general,2026-10-09T18:00:00+08:00,2026-10-09T18:10:00+08:00,2026-10-09T18:40:00+08:00,2026-10-10T09:00:00+08:00,2026-10-16T10:00:00+08:00,2026-10-19T09:00:00+08:00,,d_a,closed,2026-10-19T09:00:00+08:00
"""

# S3 is corrected: satisfaction 3 first, 4 a day later, its dimension scores 3, 3, 3 to
# 5, 5, 4 (mean 4.67: an excellent survey although its satisfaction is 4). S5 rates
# attitude and professionalism 5 and skips speed (no mean dimension score). S4 was never
# answered. S6 is sent Sunday 23:50 local (week 47) and answered 16:30 UTC Sunday =
# 00:30 Monday local (week 48).
SURVEYS = """\
response_id,ticket_id,complaint_id,customer_id,sent_at,answered_at,satisfaction,nps_score,attitude_score,speed_score,professionalism_score,comment,updated_at
S0,T0,,C1,2026-11-10T11:00:00+08:00,2026-11-10T12:00:00+08:00,4,9,4,4,4,,2026-11-10T12:00:00+08:00
S1,T1,,C1,2026-11-16T14:00:00+08:00,2026-11-16T15:00:00+08:00,5,10,5,5,5,很好,2026-11-16T15:00:00+08:00
S2,T2,,C2,2026-11-17T11:00:00+08:00,2026-11-17T12:00:00+08:00,2,3,2,2,2,call me 13900000000,2026-11-17T12:00:00+08:00
S3,T3,,C1,2026-11-18T09:30:00+08:00,2026-11-18T10:00:00+08:00,3,8,3,3,3,,2026-11-18T10:00:00+08:00
S3,T3,,C1,2026-11-18T09:30:00+08:00,2026-11-18T10:00:00+08:00,4,8,5,5,4,,2026-11-19T10:00:00+08:00
S4,T5,,C1,2026-11-16T05:00:00+08:00,,,,,,,,2026-11-16T05:00:00+08:00
S5,,P1,C2,2026-11-18T12:00:00+08:00,2026-11-19T10:00:00+08:00,3,6,5,,5,,2026-11-19T10:00:00+08:00
S6,T6,,C2,2026-11-22T23:50:00+08:00,2026-11-22T16:30:00Z,1,0,1,1,1,,2026-11-23T09:30:00+08:00
"""

AUDITS = """\
audit_id,kind,department,agent_id,audited_at,score_1,score_2,score_3,updated_at
AU1,process_audit,d_a,A1,2026-11-17T10:00:00+08:00,8,8.5,9,2026-11-17T12:00:00+08:00
"""

FILES = {"crm_customers.csv": CUSTOMERS, "crm_tickets.csv": TICKETS,
         "complaints.csv": COMPLAINTS, "surveys.csv": SURVEYS, "audits.csv": AUDITS}


def write(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory
