"""Every DAG file imports cleanly, fast, with tags and retries, and stays thin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[1] / "dags"
HEAVY = {"pandas", "duckdb", "great_expectations", "weasyprint", "dbt", "servicepulse",
         "psycopg2", "numpy"}


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    import os

    home = tmp_path_factory.mktemp("airflow_home")
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"servicepulse_nightly", "servicepulse_weekly_report",
            "servicepulse_monthly_report"} <= set(dagbag.dags)


def test_every_dag_has_tags_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, dag_id
        for task in dag.tasks:
            if not task.task_id.startswith("check_"):  # failed checks are not retried away
                assert task.retries >= 1, f"{dag_id}.{task.task_id}"


def test_nightly_structure(dagbag):
    dag = dagbag.dags["servicepulse_nightly"]
    loads = {t.task_id for t in dag.tasks if t.task_id.startswith("load_")}
    assert loads == {"load_crm_customers", "load_crm_tickets", "load_complaints",
                     "load_survey_responses", "load_audits"}
    assert dag.get_task("check_raw_data").upstream_task_ids == loads
    assert dag.get_task("dbt_build").upstream_task_ids == {"check_raw_data"}
    assert dag.get_task("check_marts").upstream_task_ids == {"dbt_build"}
    # A failed critical check stops the night before any action is opened or verified.
    assert dag.get_task("track_actions").upstream_task_ids == {"check_marts"}
    # Owners' mail after the reports' Asset: a refused notice holds back no report.
    assert dag.get_task("send_action_notices").upstream_task_ids == {"track_actions"}
    assert all(dag.get_task(t).outlets for t in loads)
    assert {t.pool for t in dag.tasks} == {"servicepulse_warehouse"}


def test_every_task_alerts_after_its_last_retry_and_a_stuck_night_alerts(dagbag):
    import asyncio
    import inspect

    from airflow._shared.module_loading import import_string

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert any(callable(c) for c in callbacks), f"{dag_id}.{task.task_id}"
    (deadline,) = dagbag.dags["servicepulse_nightly"].deadline
    assert deadline.interval.total_seconds() == 6 * 3600
    callback = import_string(deadline.callback.path)  # what the triggerer will import
    assert inspect.iscoroutinefunction(callback)
    assert asyncio.iscoroutinefunction(callback)


@pytest.mark.parametrize("report", ["weekly", "monthly"])
def test_reports_wait_for_the_nightly_checked_marts(dagbag, report):
    nightly = dagbag.dags["servicepulse_nightly"]
    dag = dagbag.dags[f"servicepulse_{report}_report"]
    # After the mart checks passed and the night's corrective actions were tracked
    # (the reports' 整改跟踪 section reads them).
    checked = {outlet.uri for outlet in nightly.get_task("track_actions").outlets}
    assert dag.timetable.asset_condition.uri in checked
    assert {"period", "recipient", "resend_reason"} <= set(dag.params)
    # Every scheduled report run checks that the nightly still runs at all.
    assert {t.task_id for t in dag.tasks} == {
        f"plan_{report}_report", f"render_and_send_{report}_report",
        f"finish_{report}_report", "check_nightly_heartbeat"}


@pytest.mark.parametrize("report", ["weekly", "monthly"])
def test_publishing_fans_out_one_mapped_task_per_audience(dagbag, report):
    """The plan's items are expanded into one render-and-send task each (dynamic task
    mapping), outside the one-slot warehouse pool so the workers share the renders; the
    finish step runs whatever they did, and reads the plan's items and their results."""
    from airflow.sdk.definitions.xcom_arg import PlainXComArg

    dag = dagbag.dags[f"servicepulse_{report}_report"]
    plan, render, finish = (dag.get_task(f"{step}_{report}_report")
                            for step in ("plan", "render_and_send", "finish"))
    assert not plan.is_mapped and render.is_mapped and not finish.is_mapped
    # .expand(item=<the plan's output>): a TaskFlow task keeps it with its arguments.
    assert set(render.op_kwargs_expand_input.value) == {"item"}
    expanded = render.op_kwargs_expand_input.value["item"]
    assert isinstance(expanded, PlainXComArg) and expanded.operator is plan
    assert render.upstream_task_ids == {plan.task_id}
    assert finish.upstream_task_ids == {plan.task_id, render.task_id}
    assert finish.trigger_rule == "all_done"
    assert {plan.pool, finish.pool} == {"servicepulse_warehouse"}
    assert render.pool == "default_pool"
    assert render.retries >= 1


def test_dag_files_have_no_heavy_top_level_imports():
    for path in DAGS.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                if name in ("servicepulse.dag_common", "servicepulse.constants"):
                    continue  # the DAG files' shared modules, light by the test below
                assert name.split(".")[0] not in HEAVY, f"{path.name} imports {name} at top level"


def test_the_dag_files_shared_module_stays_light():
    """dag_common (and constants, which it reads) import only the standard library,
    airflow and each other at the top: parsing a DAG file stays cheap."""
    package = DAGS.parent / "src" / "servicepulse"
    allowed = {"os", "datetime", "typing", "zoneinfo", "__future__", "airflow",
               "servicepulse.constants"}
    for module in ("dag_common.py", "constants.py"):
        for node in ast.parse((package / module).read_text()).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name in allowed or name.split(".")[0] in allowed - {"servicepulse"}, \
                    f"{module} imports {name} at top level"


@pytest.mark.parametrize("dag_file", sorted(p.name for p in DAGS.glob("*.py")))
def test_dag_file_parses_in_well_under_a_second(dag_file):
    code = ("import time, runpy, airflow.sdk; t = time.perf_counter(); "
            f"runpy.run_path({str(DAGS / dag_file)!r}); "
            "print(time.perf_counter() - t)")
    elapsed = float(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                   text=True, check=True).stdout.strip().splitlines()[-1])
    assert elapsed < 0.5, f"parsing {dag_file} took {elapsed:.2f}s"
