import hashlib
from datetime import date

import pandas as pd
import pytest

from servicepulse.demo.generate import GenerationSpec, generate
from servicepulse.sources.contracts import load_contracts

FILE_OF = {"crm_customers": "crm_customers.csv", "crm_tickets": "crm_tickets.csv",
           "complaints": "complaints.csv", "survey_responses": "surveys.csv",
           "audits": "audits.csv"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    generate(GenerationSpec(out=out, start=date(2026, 9, 1), days=56, seed=11,
                            tickets_per_day=120))
    return out


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.csv")}


def test_same_seed_same_bytes_other_seed_other_bytes(generated, tmp_path):
    again, other = tmp_path / "again", tmp_path / "other"
    generate(GenerationSpec(out=again, start=date(2026, 9, 1), days=56, seed=11,
                            tickets_per_day=120))
    generate(GenerationSpec(out=other, start=date(2026, 9, 1), days=56, seed=12,
                            tickets_per_day=120))
    assert _digest(again) == _digest(generated)
    assert _digest(other)["crm_tickets.csv"] != _digest(generated)["crm_tickets.csv"]


def test_columns_are_the_catalogues(generated):
    # Every column a full source delivers; not the optional ones (a system's own
    # verdict on a complaint step), which stand in only where a system records no time.
    for source, filename in FILE_OF.items():
        header = pd.read_csv(generated / filename, nrows=0).columns.tolist()
        assert header == [c.name for c in load_contracts()[source].columns
                          if not c.optional], source


def test_timestamps_carry_a_utc_offset(generated):
    tickets = pd.read_csv(generated / "crm_tickets.csv", dtype=str, keep_default_na=False)
    assert tickets["created_at"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$").all()


def test_data_is_realistic_not_uniform(generated):
    tickets = pd.read_csv(generated / "crm_tickets.csv", dtype=str, keep_default_na=False)
    created = pd.to_datetime(tickets["created_at"], format="ISO8601")
    local = created.dt.tz_convert("Asia/Shanghai")
    per_weekday = local.dt.day_of_week.value_counts()
    assert per_weekday[0] > 1.5 * per_weekday[6]            # Mondays busier than Sundays
    per_hour = local.dt.hour.value_counts()
    assert per_hour.get(10, 0) > 5 * per_hour.get(3, 1)     # office hours
    # 1 October (National Day) is a holiday dip against the Wednesdays around it.
    day_counts = local.dt.date.value_counts()
    assert day_counts[date(2026, 10, 1)] < 0.6 * day_counts[date(2026, 9, 23)]
    first = pd.to_datetime(tickets["first_response_at"].replace("", None), format="ISO8601")
    minutes = (first - created).dt.total_seconds() / 60
    assert (minutes > 30).mean() > 0.03                      # some SLA breaches
    assert (tickets["first_response_at"] == "").sum() > 0   # some never answered
    assert tickets["ticket_id"].duplicated().sum() > 0      # corrected / repeated rows
    by_department = tickets.groupby("department")["contacts_to_resolve"].apply(
        lambda c: (c == "1").mean())
    assert by_department.max() - by_department.min() > 0.05  # departments differ


def test_surveys_have_non_response(generated):
    surveys = pd.read_csv(generated / "surveys.csv", dtype=str, keep_default_na=False)
    unanswered = (surveys["answered_at"] == "").mean()
    assert 0.2 < unanswered < 0.7
