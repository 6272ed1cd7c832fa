from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from servicepulse.settings import Settings, load_settings

T = TypeVar("T")

# Modules whose tests build marts with dbt, themselves or through a fixture: `make
# test-fast` leaves them out (mark dbt_build). It runs with SERVICEPULSE_TEST_FAST set, and
# then any test that still reaches dbt fails and says to list its module here.
DBT_BUILDING_MODULES = {
    "test_actions", "test_actions_app", "test_actions_browser", "test_any_history",
    "test_bounded_dates", "test_build_inputs", "test_dbt_parse_cache", "test_dbt_project",
    "test_dbt_starter",
    "test_dbt_results", "test_email", "test_feedback_data", "test_incremental", "test_known_answers",
    "test_kpi_period_finder", "test_onboarding_real_exports", "test_one_error_line",
    "test_partial_sources", "test_processes", "test_publish_fan_out", "test_quality",
    "test_quality_defects", "test_report_schedule", "test_report_shapes",
    "test_reporting_time_zone", "test_reports", "test_rerun_identical", "test_targets",
    "test_time_zone_matrix", "test_workbook",
}


# dbt's parse of the project, kept for every test's new output folder (settings:
# warehouse.dbt_parse_cache): one folder per session, made by the controlling process
# before pytest-xdist starts its workers, which inherit the variable. Set it empty to run
# without (each output folder then parses the project on its own).
PARSE_CACHE_VARIABLE = "SERVICEPULSE_TESTS_DBT_PARSE_CACHE"


# A dbt starter (servicepulse.dbt_starter) for every test's settings (warehouse.dbt_starter):
# one per session, started by the controlling process, whose socket path the workers
# inherit. dbt commands then skip importing dbt, about 3 s each, hundreds of times. Set
# the variable empty to run every dbt command as the program, as production does.
STARTER_VARIABLE = "SERVICEPULSE_TESTS_DBT_STARTER"


def pytest_configure(config):
    if not hasattr(config, "workerinput") and PARSE_CACHE_VARIABLE not in os.environ:
        import tempfile

        os.environ[PARSE_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="servicepulse-dbt-parse-")
        config._servicepulse_parse_cache = os.environ[PARSE_CACHE_VARIABLE]
    if (not hasattr(config, "workerinput") and STARTER_VARIABLE not in os.environ
            and not os.environ.get("SERVICEPULSE_TEST_FAST")  # no dbt there
            and sys.platform.startswith("linux")):  # its sockets and /proc
        config._servicepulse_starter = _start_dbt_starter()
        os.environ[STARTER_VARIABLE] = config._servicepulse_starter.args[-1]
    if os.environ.get("SERVICEPULSE_TEST_FAST"):
        import servicepulse.transform

        def refused(*arguments):
            raise AssertionError(
                "this test builds with dbt, which `make test-fast` leaves out: add its "
                "module to DBT_BUILDING_MODULES in tests/conftest.py")

        servicepulse.transform._dbt_command = refused


def pytest_unconfigure(config):
    made = getattr(config, "_servicepulse_parse_cache", None)
    if made:
        shutil.rmtree(made, ignore_errors=True)
        os.environ.pop(PARSE_CACHE_VARIABLE, None)
    starter = getattr(config, "_servicepulse_starter", None)
    if starter is not None:
        from servicepulse.processes import end_group

        end_group(starter)
        shutil.rmtree(Path(starter.args[-1]).parent, ignore_errors=True)
        os.environ.pop(STARTER_VARIABLE, None)


def _start_dbt_starter(program: list[str] | None = None):
    """The session's dbt starter, once it listens (it dies with this process).
    ``program``: the starter's command without its socket (tests of other runs)."""
    import subprocess
    import tempfile
    import time

    from servicepulse.processes import die_with_parent

    socket_path = Path(tempfile.mkdtemp(prefix="servicepulse-dbt-starter-")) / "dbt.sock"
    starter = subprocess.Popen(
        [*(program or [sys.executable, "-m", "servicepulse.dbt_starter"]), str(socket_path)],
        process_group=0, preexec_fn=die_with_parent(os.getpid()))  # noqa: PLW1509
    deadline = time.monotonic() + 120
    while not socket_path.exists():
        if starter.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the dbt starter did not start (exit {starter.poll()})")
        time.sleep(0.05)
    return starter


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the marks added here
def pytest_collection_modifyitems(config, items):
    """The order for `make test` (pytest-xdist, --dist loadgroup):

    - Modules with Airflow runs first, then those with PostgreSQL builds, then the rest,
      each module's tests together: the longest work starts while the other workers take
      the short tests, and a module's fixtures are built once.
    - A test that uses a fixture of its module's scope goes to the worker that has its
      module's other tests (an xdist group per module), so the fixture is built once;
      a module marked spread_over_workers lets its tests go to any worker.
    """
    for item in items:  # a test on PostgreSQL is one, marked or not
        if "postgres_prefix" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        if item.module.__name__.rsplit(".", 1)[-1] in DBT_BUILDING_MODULES:
            item.add_marker(pytest.mark.dbt_build)

    def weight(module_items) -> int:
        marks = {mark.name for item in module_items for mark in item.iter_markers()}
        return 0 if "airflow" in marks else 1 if "postgres" in marks else 2

    by_module: dict[str, list] = {}
    for item in items:
        by_module.setdefault(item.module.__name__, []).append(item)
    ordered = sorted(by_module.values(), key=weight)  # stable: collection order within
    items[:] = [item for module_items in ordered for item in module_items]
    for item in items:
        if item.get_closest_marker("spread_over_workers"):
            continue
        fixtures = getattr(item, "_fixtureinfo", None)
        definitions = fixtures.name2fixturedefs.values() if fixtures else ()
        if any(definition.scope == "module" for chain in definitions for definition in chain):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))


PG = {"host": "127.0.0.1", "port": 5432, "dbname": "test", "user": "postgres"}


def write_config(tmp_path: Path, sources_dir: Path, **overrides) -> Path:
    config = {
        "reporting_timezone": "Asia/Shanghai",
        "output_dir": str(tmp_path / "output"),
        "airflow_home": str(tmp_path / "airflow"),
        "warehouse": {"kind": "duckdb", "duckdb_path": str(tmp_path / "output" / "w.duckdb"),
                      "dbt_parse_cache": os.environ.get(PARSE_CACHE_VARIABLE) or None,
                      "dbt_starter": os.environ.get(STARTER_VARIABLE) or None,
                      "postgres": dict(PG)},
        "sources": {"directory": str(sources_dir)},
        "delivery": {"sender": "servicepulse@example.com", "weekly": [
            {"email": "ops@example.com", "name": "运营总监", "locale": "zh-CN"},
            {"email": "manager@example.com", "name": "Service Manager", "locale": "en"},
            {"email": "head.a@example.com", "name": "A 主管", "locale": "zh-CN",
             "department": "d_a"},
        ], "monthly": [
            {"email": "ceo@example.com", "name": "CEO", "locale": "en"},
            {"email": "head.b@example.com", "name": "B 主管", "locale": "zh-CN",
             "department": "d_b"},
        ]},
    }
    for key, value in overrides.items():
        node = config
        *parents, last = key.split(".")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "servicepulse.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def settings_for(tmp_path: Path, sources_dir: Path, **overrides) -> Settings:
    return load_settings(write_config(tmp_path, sources_dir, **overrides), environ={})


def postgres_reachable() -> bool:
    import psycopg2

    try:
        psycopg2.connect(connect_timeout=3, **PG).close()
    except psycopg2.OperationalError:
        return False
    return True


def require_local_service(available: bool, what: str) -> None:
    """Skip a test whose server is missing on a developer's machine; under CI it must run."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is not reachable")


@pytest.fixture
def postgres_prefix():
    """A fresh schema prefix on the local PostgreSQL; its schemas are dropped after."""
    require_local_service(postgres_reachable(), "PostgreSQL on 127.0.0.1:5432")
    import psycopg2

    prefix = f"t{uuid.uuid4().hex[:10]}_"
    yield prefix
    connection = psycopg2.connect(**PG)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("select nspname from pg_namespace where nspname like %s",
                       (prefix + "%",))
        for (schema,) in cursor.fetchall():
            cursor.execute(f'drop schema "{schema}" cascade')
    connection.close()


# What a copy of the built known-answer warehouse may change: settings read after the
# build (checks, delivery, reports). Anything the load or the build reads (the warehouse,
# the zone, the sources, the mapping, the calendar) needs a build of its own.
_COPY_MAY_CHANGE = ("quality.", "delivery.", "reports.", "schedule.", "notifications.")


def made_once(tmp_path_factory, name: str, make: Callable[[Path], T]) -> T:
    """What ``make(folder)`` returns, made in ``folder`` by the first test process of the
    run (a pytest-xdist worker, or the only process) that asks, and read back by the
    others: a built warehouse is built once a run, not once a worker. For what tests only
    read or copy; the others wait for it while it is made (one lock per name)."""
    import fcntl
    import pickle

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / f"made-once-{name}"
    made_file = root / f"made-once-{name}.pickle"
    with open(root / f"made-once-{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if made_file.exists():
            return pickle.loads(made_file.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # a maker that failed halfway
        folder.mkdir()
        made = make(folder)
        made_file.write_bytes(pickle.dumps(made))
        return made


@pytest.fixture(scope="session")
def known_answers_built(tmp_path_factory) -> Settings:
    """The known-answer sources loaded and built on DuckDB once per run (the real path:
    loader, then dbt). Tests read it or take copies (copy_of_known_answers), so a test
    that changes its warehouse changes no other test's."""
    from tests import known_answers
    from tests.kpi_harness import UNTIL, load_and_build

    def make(folder: Path) -> Settings:
        settings = settings_for(folder, known_answers.write(folder / "sources"))
        load_and_build(settings, UNTIL)
        return settings

    return made_once(tmp_path_factory, "known-answers-built", make)


@pytest.fixture(scope="session")
def copy_of_known_answers(known_answers_built):
    """copy(folder, **overrides) -> Settings of a private copy of the built known-answer
    sources and output (warehouse file, dbt target, landing) in ``folder``."""
    def copy(folder: Path, **overrides) -> Settings:
        changed = [key for key in overrides if not key.startswith(_COPY_MAY_CHANGE)]
        if changed:
            raise ValueError(f"{changed} change what the build read: build the data instead")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(known_answers_built.sources_dir, folder / "sources")
        shutil.copytree(known_answers_built.output_path, folder / "output")
        return settings_for(folder, folder / "sources", **overrides)

    return copy


@pytest.fixture(scope="session")
def actions_built(tmp_path_factory) -> Settings:
    """The rectification loop's hand-made sources (tests/actions_data.py) loaded and
    built on DuckDB once per run; take a copy (tests.actions_data.tracked_copy)."""
    from datetime import datetime

    from tests import actions_data
    from tests.kpi_harness import SHANGHAI, load_and_build

    def make(folder: Path) -> Settings:
        settings = settings_for(folder, actions_data.write(folder / "sources"),
                                **actions_data.OVERRIDES)
        load_and_build(settings, datetime(2026, 9, 28, tzinfo=SHANGHAI))
        return settings

    return made_once(tmp_path_factory, "actions-built", make)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def browser():
    """Debian's chromium through Playwright (both installed by `make setup`; Playwright's
    own browser download is not used), for the tests that look at pages as a reader does."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is missing: run `make setup` (it installs Debian's chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()
