"""Targets with effective dates: a period is judged against the target in force on its
first day, the department's own before the organisation's, and a target set today
never recolours a past period. On the hand-made weeks of tests/actions_data.py."""

from __future__ import annotations

import json
import shutil

import pytest

from servicepulse.cli import main
from servicepulse.settings import ConfigError
from servicepulse.transform import build
from servicepulse.warehouse import connected
from tests.actions_data import OVERRIDES
from tests.conftest import settings_for

TARGETS = [
    # From week 6 (Monday 7 September) the organisation's RESP_SLA target is 40 %.
    {"kpi": "RESP_SLA", "target": 0.4, "effective_from": "2026-09-07",
     "reason": "a new telephony system"},
    # d_y's own from week 3 (17 August): 30 %, it holds over the organisation's.
    {"kpi": "RESP_SLA", "department": "d_y", "target": 0.3, "amber_band": 0.05,
     "effective_from": "2026-08-17"},
    # d_x's process audits pass at 18 from August on (AU1 scored 20).
    {"kpi": "TPS", "department": "d_x", "target": 18, "effective_from": "2026-08-01"},
]


def _statuses(settings) -> dict[tuple[str, str], tuple[str, float]]:
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame(
            'select dimension_value, period_start, status, target from "marts"."kpi_weekly" '
            "where kpi_id = 'RESP_SLA' and dimension in ('organisation', 'department')")
    return {(r.dimension_value, str(r.period_start)[:10]): (r.status, r.target)
            for r in frame.itertuples(index=False)}


@pytest.fixture(scope="module")
def before_and_after(actions_built, tmp_path_factory):
    """The built weeks, then the same warehouse rebuilt (incrementally) once the targets
    are set."""
    folder = tmp_path_factory.mktemp("targets")
    shutil.copytree(actions_built.output_path, folder / "output")
    shutil.copytree(actions_built.sources_dir, folder / "sources")
    settings = settings_for(folder, folder / "sources", **OVERRIDES)
    before = _statuses(settings)
    changed = settings_for(folder, folder / "sources", **OVERRIDES, targets=TARGETS)
    build(changed)
    return changed, before, _statuses(changed)


def test_a_new_target_applies_from_its_date_and_never_recolours_the_past(before_and_after):
    _, before, after = before_and_after
    assert set(before) == set(after)
    for (slice_, week), (status, target) in after.items():
        if week < "2026-08-17" or (slice_ != "d_y" and week < "2026-09-07"):
            assert (status, target) == before[(slice_, week)], (slice_, week)
    # d_x, 50 % on time in weeks 6 and 7: red against 98 %, green against 40 %.
    assert before[("d_x", "2026-09-07")] == ("red", 0.98)
    assert after[("d_x", "2026-09-07")] == ("green", 0.4)
    assert after[("d_x", "2026-08-17")] == ("red", 0.98)   # before the change
    # d_y's own target from week 3 holds over the organisation's from week 6.
    assert after[("d_y", "2026-08-17")] == ("green", 0.3)
    assert after[("d_y", "2026-09-07")] == ("green", 0.3)
    assert after[("d_y", "2026-08-10")] == before[("d_y", "2026-08-10")] == ("green", 0.98)
    # The organisation, week 6: 8 of 12 on time, 66.7 % against 40 %.
    assert after[("all", "2026-09-07")] == ("green", 0.4)
    assert after[("all", "2026-08-31")] == before[("all", "2026-08-31")]


def test_an_audit_is_held_to_its_departments_target_on_its_day(before_and_after):
    settings, _, _ = before_and_after
    with connected(settings) as warehouse:
        frame = warehouse.fetch_frame('select audit_id, pass_score, is_passed '
                                      'from "marts"."fct_audits" order by audit_id')
    assert [tuple(r) for r in frame.itertuples(index=False)] == [
        ("AU1", 18.0, True), ("AU2", 24.0, True)]


def test_targets_lists_the_days_each_target_holds(before_and_after, capsys):
    settings, _, _ = before_and_after
    assert main(["targets", "--config", str(settings.config_file), "--kpi", "RESP_SLA",
                 "--format", "json"]) == 0
    listed = [(e["department"], e["effective_from"], e["effective_until"], e["target"],
               e["origin"]) for e in json.loads(capsys.readouterr().out)]
    assert listed == [(None, "1900-01-01", "2026-09-07", 0.98, "catalogue"),
                      (None, "2026-09-07", None, 0.4, "settings"),
                      ("d_y", "2026-08-17", None, 0.3, "settings")]


def test_a_target_for_an_unknown_kpi_or_set_twice_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="RESP_SLAA is not a KPI"):
        settings_for(tmp_path, tmp_path, targets=[
            {"kpi": "RESP_SLAA", "target": 0.9, "effective_from": "2026-01-01"}])
    with pytest.raises(ConfigError, match="set twice"):
        settings_for(tmp_path, tmp_path, targets=[
            {"kpi": "CSI", "target": 80, "effective_from": "2026-01-01"},
            {"kpi": "CSI", "target": 85, "effective_from": "2026-01-01"}])
