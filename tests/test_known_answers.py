"""KPIs of the hand-made data set (tests/known_answers.py), through loader + dbt.

Week 2026-W47 is Mon 16 – Sun 22 November 2026 in Asia/Shanghai.

Tickets created in W47 (local): T1 T2 T3 T4 T5 T6 = 6. T5 is created Sunday
17:30 UTC, which is Monday 01:30 local, so it is in W47, not W46.
First responses (minutes): T1 20, T2 45, T3 30, T4 never, T5 10, T6 40.
  RESP_SLA = within 30 min / created = {T1, T3, T5} / 6 = 3/6 = 0.5
  FRT median over the 5 answered = median(10, 20, 30, 40, 45) = 30
  FRT_P90 = percentile_cont(0.9): 40 + 0.6 × (45 − 40) = 43
Resolved in W47: T1 (1 contact), T2 (corrected to 2 contacts), T3 (1), T5 (1);
T6 is resolved Monday 23 Nov (W48).
  FCR = 3/4 = 0.75
Complaints received in W47: P1, P2 (P3 is Monday 01:00 of W48).
  CMP_RATE = 2/6 = 0.3333…
Answered surveys in W47: S1 (5, nps 10), S2 (2, 3), S3 (corrected 3 → 4, nps 8),
S5 (3, 6); S4 never answered; S6 is answered 00:30 Monday local (W48).
  CSAT = satisfaction ≥ 4: {S1, S3} = 2/4 = 0.5
  CSI = ((5 + 2 + 4 + 3)/4 − 1)/4 × 100 = (3.5 − 1)/4 × 100 = 62.5
  NPS = (promoters {S1} − detractors {S2, S5}) / 4 × 100 = −25
Week 46 (previous): T0 answered in 5 min, resolved first contact, S0 satisfaction 4,
nps 9: RESP_SLA 1, FRT 5, FCR 1, CMP_RATE 0/1 = 0, CSAT 1, CSI 75, NPS 100.
Resolved in W47, handle seconds: T1 600, T2 900, T3 400, T5 200.
  AHT = 2100/4 = 525 s (previous week: T0 300 s)
Complaints received in W47: P1 (urgent, escalated; classified after 10 min, dispatched
30 min after that, solution after 6 h) and P2 (classified after 20 min, never
dispatched, no solution yet).
  CMP_SOLUTION_24H = 1/2, STEP_CLASSIFY_30M = 2/2, STEP_DISPATCH_1H = 1/2,
  STEP_ESCALATION = urgent escalated / urgent = 1/1 (W46 had no complaints: previous null)
Audits in W47: AU1, a process audit scoring 8 + 8.5 + 9 = 25.5 → TPS 25.5 (green, ≥ 24);
no mystery-shopper visit → TDS null with denominator 0.
Department d_a, W47: tickets T1 T2 T5 → RESP_SLA 2/3; surveys S1 (5), S2 (2) and S5
(rates complaint P1 of d_a, 3) → CSAT 1/3. Department d_b, W47: T3 T4 T6 →
RESP_SLA 1/3; survey S3 → CSAT 1/1. d_b has nothing in W46: null, denominator 0.
"""

from __future__ import annotations

import pytest

from tests import known_answers
from tests.conftest import settings_for
from tests.kpi_harness import UNTIL, all_kpi_rows, kpis, load_and_build

EXPECTED_W47 = {
    # kpi: (value, numerator, denominator, status, previous)
    "RESP_SLA": (0.5, 3, 6, "red", 1.0),
    "FRT": (30.0, None, 5, "green", 5.0),
    "FRT_P90": (43.0, None, 5, None, 5.0),
    "FCR": (0.75, 3, 4, "red", 1.0),
    "CMP_RATE": (2 / 6, 2, 6, "red", 0.0),
    "CSAT": (0.5, 2, 4, "red", 1.0),
    "CSI": (62.5, 250, 4, "red", 75.0),
    "NPS": (-25.0, -1, 4, "red", 100.0),
    "AHT": (525.0, 2100, 4, None, 300.0),
    "CMP_SOLUTION_24H": (0.5, 1, 2, "red", None),
    "STEP_CLASSIFY_30M": (1.0, 2, 2, "green", None),
    "STEP_DISPATCH_1H": (0.5, 1, 2, "red", None),
    "STEP_ESCALATION": (1.0, 1, 1, "green", None),
    "TPS": (25.5, 25.5, 1, "green", None),
    "TDS": (None, 0, 0, None, None),
}


@pytest.fixture(scope="module")
def duckdb_settings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("known")
    settings = settings_for(tmp, known_answers.write(tmp / "sources"))
    load_and_build(settings, UNTIL)
    return settings


@pytest.mark.parametrize("kpi_id", sorted(EXPECTED_W47))
def test_organisation_week_47(duckdb_settings, kpi_id):
    value, numerator, denominator, status, previous = EXPECTED_W47[kpi_id]
    kpi = kpis(duckdb_settings, "2026-W47")[kpi_id]
    assert kpi["value"] == (None if value is None else pytest.approx(value))
    if numerator is not None:
        assert kpi["numerator"] == pytest.approx(numerator)
    assert kpi["denominator"] == denominator
    assert kpi["status"] == status
    assert kpi["previous"] == (None if previous is None else pytest.approx(previous))


def test_departments_week_47(duckdb_settings):
    d_a = kpis(duckdb_settings, "2026-W47", "d_a")
    d_b = kpis(duckdb_settings, "2026-W47", "d_b")
    assert d_a["RESP_SLA"]["value"] == pytest.approx(2 / 3)
    assert d_a["CSAT"]["value"] == pytest.approx(1 / 3)
    assert d_b["RESP_SLA"]["value"] == pytest.approx(1 / 3)
    assert d_b["CSAT"]["value"] == pytest.approx(1.0)


def test_kpi_without_data_is_null_not_zero(duckdb_settings):
    d_b_w46 = kpis(duckdb_settings, "2026-W46", "d_b")
    assert d_b_w46["CSAT"]["denominator"] == 0
    assert d_b_w46["CSAT"]["value"] is None
    assert d_b_w46["CSAT"]["status"] is None


def test_month_november_2026(duckdb_settings):
    """Everything above happens in November (local), plus week 48's T6 response and
    S6 answer (23 Nov): created T0–T6 = 7 tickets, answered within 30 min T0 T1 T3 T5
    → RESP_SLA 4/7; answered surveys S0(4) S1(5) S2(2) S3(4) S5(3) S6(1) → CSAT
    3/6 = 0.5, CSI ((19/6) − 1)/4 × 100 = 54.1666…; complaints P1 P2 P3 → 3/7."""
    november = kpis(duckdb_settings, "2026-11")
    assert november["RESP_SLA"]["value"] == pytest.approx(4 / 7)
    assert november["CSAT"]["value"] == pytest.approx(0.5)
    assert november["CSI"]["value"] == pytest.approx((19 / 6 - 1) / 4 * 100)
    assert november["CMP_RATE"]["value"] == pytest.approx(3 / 7)
    assert november["CSAT"]["previous"] is None  # October has no data at all
    with pytest.raises(Exception, match="no KPI rows for 2026-10"):
        kpis(duckdb_settings, "2026-10")


@pytest.mark.postgres
def test_postgres_build_equals_duckdb(duckdb_settings, tmp_path, postgres_prefix):
    """Same raw data, same models, PostgreSQL: every KPI row equal to DuckDB's."""
    pg_settings = settings_for(tmp_path, known_answers.write(tmp_path / "sources"),
                               **{"warehouse.kind": "postgres",
                                  "warehouse.schema_prefix": postgres_prefix})
    load_and_build(pg_settings, UNTIL)
    for grain in ("week", "month"):
        duck_rows, pg_rows = all_kpi_rows(duckdb_settings, grain), all_kpi_rows(pg_settings, grain)
        assert len(pg_rows) == len(duck_rows) > 0
        assert pg_rows == duck_rows
    assert kpis(pg_settings, "2026-W47")["CSI"]["value"] == pytest.approx(62.5)
