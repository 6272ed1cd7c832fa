"""Crash-safe processes: a killed command leaves no child behind, and runs queue.

Real `servicepulse build` processes on the hand-made data set: killed outright
(SIGKILL) or stopped (SIGTERM) while dbt runs, and started twice at once.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from tests import known_answers
from tests.conftest import settings_for

SERVICEPULSE = [sys.executable, "-m", "servicepulse.cli"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, copy_of_known_answers):
    return copy_of_known_answers(tmp_path_factory.mktemp("processes"))


def _env(settings, **extra) -> dict[str, str]:
    return {**os.environ, "SERVICEPULSE_CONFIG": str(settings.config_file), **extra}


def _kpis(settings) -> dict:
    done = subprocess.run([*SERVICEPULSE, "kpis", "--period", "2026-W47", "--format", "json"],
                          env=_env(settings), capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _processes(program: bytes) -> dict[int, int]:
    """pid -> parent pid of every live process running ``program`` (e.g. b"/airflow")."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z" and any(part.endswith(program) for part in command[:2]):
            found[int(entry.name)] = int(stat[1])
    return found


def _dbt_runs(settings) -> set[int]:
    """The live dbt processes at work in this warehouse's folder: the dbt program, or a
    copy forked from the dbt starter (warehouse.dbt_starter)."""
    folder = settings.duckdb_path.parent.resolve()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        dbt = (any(part.endswith(b"/dbt") for part in command[:2])
               or b"servicepulse.dbt_starter" in command)
        if state != "Z" and dbt and cwd == folder:
            found.add(int(entry.name))
    return found


def _is_a_starter_copy(pid: int) -> bool:
    return b"servicepulse.dbt_starter" in Path(f"/proc/{pid}/cmdline").read_bytes()


# dbt as a program (production), or forked from the session's dbt starter (tests/conftest.py)
AS_PROGRAM = {"SERVICEPULSE__WAREHOUSE__DBT_STARTER": "null"}
DBT_FROM = {"program": AS_PROGRAM, "starter": {}}


def _start_build(settings, **extra) -> tuple[subprocess.Popen, int]:
    """A build, and its dbt once that runs. A full refresh: a plain build of the
    unchanged warehouse would skip dbt (servicepulse.build_inputs)."""
    build = subprocess.Popen([*SERVICEPULSE, "build", "--full-refresh"],
                             env=_env(settings, **extra),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = _dbt_runs(settings)
        if runs:
            return build, runs.pop()
        assert build.poll() is None, build.communicate()
        time.sleep(0.05)
    raise AssertionError("dbt never started")


def _gone(settings, pid: int, within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pid not in _dbt_runs(settings):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("dbt_from", DBT_FROM)
def test_a_killed_build_leaves_no_dbt_and_a_rerun_gives_the_same_kpis(built, dbt_from):
    before = _kpis(built)
    build, dbt = _start_build(built, **DBT_FROM[dbt_from])
    assert _is_a_starter_copy(dbt) == (dbt_from == "starter")
    time.sleep(1)  # dbt is at work on the warehouse
    build.send_signal(signal.SIGKILL)
    build.wait(30)
    assert _gone(built, dbt), f"dbt {dbt} outlived its killed parent"
    again = subprocess.run([*SERVICEPULSE, "build"], env=_env(built), capture_output=True,
                           text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert _kpis(built) == before


@pytest.mark.parametrize("dbt_from", DBT_FROM)
def test_sigterm_reaches_dbt_and_the_build_stops(built, dbt_from):
    build, dbt = _start_build(built, **DBT_FROM[dbt_from])
    assert _is_a_starter_copy(dbt) == (dbt_from == "starter")
    time.sleep(1)
    build.send_signal(signal.SIGTERM)
    _, err = build.communicate(timeout=60)
    assert build.returncode != 0
    assert "Traceback" not in err
    assert _gone(built, dbt)


def test_a_second_build_waits_for_the_first_and_names_it(built):
    first, _ = _start_build(built)
    second = subprocess.run([*SERVICEPULSE, "build"], env=_env(built), capture_output=True,
                            text=True, timeout=600, check=False)
    first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    waited = second.stderr.splitlines()[0]
    assert waited.startswith("waiting for the build started at ")
    assert f"(pid {first.pid} on {socket.gethostname()})" in waited


def test_with_no_wait_a_second_build_is_one_line_exit_75(built):
    first, _ = _start_build(built)
    try:
        second = subprocess.run([*SERVICEPULSE, "build"], capture_output=True, text=True,
                                env=_env(built, SERVICEPULSE__WAREHOUSE__LOCK_WAIT_SECONDS="0"),
                                timeout=120, check=False)
    finally:
        first.communicate(timeout=300)
    assert second.returncode == 75
    assert "Traceback" not in second.stderr
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: the warehouse is busy: the build ")
    assert f"pid {first.pid}" in lines[0]


def test_every_airflow_run_keeps_its_own_log(tmp_path, monkeypatch):
    """Two runs of one DAG for one day: two log files, neither overwriting the other."""
    from servicepulse import airflow_runner

    settings = settings_for(tmp_path, tmp_path / "sources")
    outputs = iter(["first run's output\n", "second run's output\n"])

    def fake_airflow(*arguments, env):
        return subprocess.CompletedProcess(arguments, 1, next(outputs), "")

    monkeypatch.setattr(airflow_runner, "_airflow", fake_airflow)
    monkeypatch.setattr(airflow_runner, "ensure_metadata_db", lambda settings, env: None)
    monkeypatch.setattr(airflow_runner, "_task_states", lambda settings, dag_id: {})
    logs = []
    for _ in range(2):
        with pytest.raises(airflow_runner.PipelineRunError, match="full log: ") as failed:
            airflow_runner.run_nightly(settings, date(2026, 11, 23))
        logs.append(Path(str(failed.value).split("full log: ")[1].split("\n")[0]))
        time.sleep(1.1)  # the start second is part of the name
    assert logs[0] != logs[1]
    assert [log.read_text() for log in logs] == ["first run's output\n",
                                                 "second run's output\n"]


def test_the_demo_api_moves_to_a_free_port_when_its_own_is_taken(tmp_path):
    from servicepulse.demo.systems import demo_systems_running

    sources = known_answers.write(tmp_path / "sources")
    (sources / "complaints.csv").write_text(known_answers.COMPLAINTS, encoding="utf-8")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        settings = settings_for(tmp_path, sources,
                                **{"sources.demo_systems": {"complaint_api_port": taken}})
        with demo_systems_running(settings) as api:
            assert api.port != taken
            assert os.environ["SERVICEPULSE__SOURCES__CONNECTORS__COMPLAINTS__URL"] == api.url
        assert "SERVICEPULSE__SOURCES__CONNECTORS__COMPLAINTS__URL" not in os.environ
    with socket.socket() as probe:  # the moved server is closed again
        assert probe.connect_ex(("127.0.0.1", api.port)) in (errno.ECONNREFUSED, 111)


def _raw_rows(settings) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        return con.execute("select ticket_id, updated_at, _partition_date, _source_row "
                           "from raw.crm_tickets order by all").fetchall()


def test_a_load_killed_mid_way_leaves_the_warehouse_as_before_and_reruns_cleanly(tmp_path):
    """A large delivery; the load is killed while it writes. Nothing half-loaded stays
    (one transaction), and the re-run loads exactly what an undisturbed load does."""
    sources = known_answers.write(tmp_path / "sources")
    tickets = sources / "crm_tickets.csv"
    template = known_answers.TICKETS.splitlines()[2].split(",")
    with tickets.open("a", encoding="utf-8") as out:
        for n in range(400_000):
            out.write(",".join([f"X{n}", *template[1:]]) + "\n")
    settings = settings_for(tmp_path / "killed", sources)
    clean = settings_for(tmp_path / "clean", sources)
    command = [*SERVICEPULSE, "load", "crm_tickets", "--date", "2026-11-23"]
    load = subprocess.Popen(command, env=_env(settings), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not settings.duckdb_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # landing done, rows being checked and written
    assert load.poll() is None, "the load finished before it could be killed"
    load.send_signal(signal.SIGKILL)
    load.wait(30)
    import duckdb

    with duckdb.connect(str(settings.duckdb_path), read_only=True) as con:
        tables = {name for (name,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()}
        if "crm_tickets" in tables:
            assert con.execute("select count(*) from raw.crm_tickets").fetchone()[0] == 0
    for target in (settings, clean):
        done = subprocess.run(command, env=_env(target), capture_output=True, text=True,
                              timeout=300, check=False)
        assert done.returncode == 0, done.stderr
    assert _raw_rows(settings) == _raw_rows(clean)
    assert len(_raw_rows(clean)) == 400_000 + len(known_answers.TICKETS.splitlines()) - 1


def _airflow_children(parent: int) -> list[int]:
    return [pid for pid, ppid in _processes(b"/airflow").items() if ppid == parent]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return stat[0] != "Z"


@pytest.mark.airflow
def test_a_killed_run_leaves_no_airflow_behind(tmp_path):
    settings = settings_for(tmp_path, known_answers.write(tmp_path / "sources"))
    run = subprocess.Popen([*SERVICEPULSE, "run", "--date", "2026-11-23"],
                           env=_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    children: list[int] = []
    while not children and time.monotonic() < deadline and run.poll() is None:
        children = _airflow_children(run.pid)
        time.sleep(0.05)
    assert children, run.communicate()
    time.sleep(2)
    run.send_signal(signal.SIGKILL)
    run.wait(30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in children)
