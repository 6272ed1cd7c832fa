"""Sources that deliver less than the contract describes, onboarded by configuration.

The hand-made known-answer data set (tests/known_answers.py), changed the way real
exports differ: the complaint system exports no solution time, and the CRM closes a
ticket by status without a closing time. Expected figures are worked out from the
rows in the comments.
"""

from __future__ import annotations

import pytest

from servicepulse.coverage import not_measured, source_gaps
from servicepulse.settings import ConfigError
from tests import known_answers
from tests.conftest import settings_for
from tests.kpi_harness import UNTIL, kpis, load_and_build


def _without_column(csv_text: str, column: str) -> str:
    lines = csv_text.strip("\n").split("\n")
    index = lines[0].split(",").index(column)
    return "\n".join(",".join(v for i, v in enumerate(line.split(",")) if i != index)
                     for line in lines) + "\n"


@pytest.fixture(scope="module")
def partial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partial")
    sources = known_answers.write(folder / "sources")
    # The complaint system records no classification or solution time, but its own
    # verdict on classification (是/否): P1 in time, P2 late, P3 not yet, P4, P5 in time.
    complaints = _without_column(_without_column(known_answers.COMPLAINTS, "solution_at"),
                                 "classified_at").strip("\n").split("\n")
    verdicts = ["分类及时", "是", "否", "", "是", "是"]
    (sources / "complaints.csv").write_text(
        "\n".join(f"{line},{verdict}" for line, verdict in zip(complaints, verdicts,
                                                                strict=True)) + "\n",
        encoding="utf-8")
    # T4 (created Wednesday 18 Nov 08:00, open) is closed by the CRM on Friday 20 Nov at
    # 10:00, by status alone: no resolution or closing time comes with it.
    with (sources / "crm_tickets.csv").open("a", encoding="utf-8") as tickets:
        tickets.write("T4,C2,phone,installation,d_b,B2,general,2026-11-18T08:00:00+08:00,"
                      ",,,,,closed,,,2026-11-20T10:00:00+08:00\n")
    settings = settings_for(folder, sources, **{"sources.connectors": {
        "complaints": {"location": "complaints.csv", "mapping": {
            "columns": {"分类及时": "classified_in_time"},
            "values": {"classified_in_time": {"是": "true", "否": "false"}},
            "absent": ["classified_at", "solution_at"]}}}})
    load_and_build(settings, UNTIL)
    return settings


def test_a_kpi_whose_input_the_source_lacks_is_not_measured(partial):
    week = kpis(partial, "2026-W47")
    solution = week["CMP_SOLUTION_24H"]
    assert solution["status"] == "not_measured"
    assert solution["reason"] == "complaints source has no solution_at"
    assert solution["value"] is None and solution["denominator"] is None
    # The system's own verdict stands in for the missing classification time: of the
    # week's complaints, P1 (Tuesday 17 Nov) was classified in time, P2 (Sunday 22 Nov)
    # was not: 1 of 2, red (target 95 %).
    classify = week["STEP_CLASSIFY_30M"]
    assert (classify["numerator"], classify["denominator"]) == (1, 2)
    assert classify["status"] == "red"
    # Dispatch is measured from its own time: P1 (received 09:00, no classification
    # time, so due 90 minutes after receipt) dispatched 09:40; P2 never, and by the
    # data's as-of moment (Monday 23 Nov 08:00) its deadline (Sunday 21:30) had passed.
    dispatch = week["STEP_DISPATCH_1H"]
    assert (dispatch["numerator"], dispatch["denominator"]) == (1, 2)


def test_the_configuration_and_the_marts_give_the_same_reasons(partial):
    week = kpis(partial, "2026-W47")
    from_marts = {kpi: entry["reason"] for kpi, entry in week.items()
                  if entry["status"] == "not_measured"}
    assert from_marts == not_measured(partial) == {
        "CMP_SOLUTION_24H": "complaints source has no solution_at"}


def test_a_closed_status_without_a_closing_time_closes_the_backlog_item(partial):
    # Open at the end of Thursday 19 Nov: T4 (created 18 Nov) and T12 (reopened 13 Oct).
    assert kpis(partial, "2026-11-19")["BACKLOG"]["value"] == 2
    # Friday 20 Nov 10:00 the CRM says T4 is closed: only T12 is open at the day's end.
    assert kpis(partial, "2026-11-20")["BACKLOG"]["value"] == 1


def test_absent_must_name_an_optional_contract_field(tmp_path):
    sources = known_answers.write(tmp_path / "sources")
    for absent, words in ((["solution_time"], "not a field of the complaints contract"),
                          (["received_at"], "is required")):
        settings = settings_for(tmp_path, sources, **{"sources.connectors": {
            "complaints": {"location": "complaints.csv", "mapping": {"absent": absent}}}})
        with pytest.raises(ConfigError, match=words):
            source_gaps(settings)


@pytest.mark.postgres
def test_postgresql_gives_the_same_kpis_for_a_partial_source(partial, tmp_path, postgres_prefix):
    """The same partial sources built on PostgreSQL: the verdict flag (a boolean column),
    the not-measured KPI and the status-closed backlog come out as on DuckDB."""
    from tests.kpi_harness import all_kpi_rows

    on_postgres = settings_for(tmp_path, partial.sources_dir, **{
        "sources.connectors": {"complaints": partial.sources.connectors["complaints"]
                               .model_dump(exclude_none=True)},
        "warehouse.kind": "postgres", "warehouse.schema_prefix": postgres_prefix})
    load_and_build(on_postgres, UNTIL)
    for grain in ("day", "week"):
        assert all_kpi_rows(on_postgres, grain) == all_kpi_rows(partial, grain)
    assert kpis(on_postgres, "2026-W47")["CMP_SOLUTION_24H"]["status"] == "not_measured"
