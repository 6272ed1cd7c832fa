"""The dbt starter (servicepulse.dbt_starter): a run forked from it answers as the dbt
program does, and keeps run_child's guarantees (its group ends with the caller, even a
caller killed outright)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from servicepulse import dbt_starter
from servicepulse.dbt_starter import StarterUnavailable, run_forked
from servicepulse.processes import end_group, run_child
from tests.conftest import _start_dbt_starter

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the dbt starter is Linux's (its sockets, /proc)")
DBT = str(Path(sys.executable).with_name("dbt"))
# A macro that works without a sound for hours: only the starter's tie to its caller can
# end it (a run that writes would also die of the closed pipe). Two loops: dbt's Jinja
# refuses a range beyond 100,000.
SPIN = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.fixture(scope="module")
def starter():
    started = _start_dbt_starter()
    yield Path(started.args[-1])
    end_group(started)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A dbt project of two macros on a DuckDB file."""
    folder = tmp_path_factory.mktemp("starter-project")
    (folder / "macros").mkdir()
    (folder / "dbt_project.yml").write_text(textwrap.dedent("""\
        name: starter_check
        version: "1.0"
        profile: starter_check
        """))
    (folder / "profiles.yml").write_text(textwrap.dedent(f"""\
        starter_check:
          target: dev
          outputs:
            dev: {{type: duckdb, path: "{folder / 'w.duckdb'}"}}
        """))
    (folder / "macros" / "macros.sql").write_text(
        "{% macro greet() %}{{ log('hello ' ~ env_var('GREETING'), info=True) }}"
        "{% endmacro %}\n"
        f"{{% macro spin() %}}{SPIN}{{% endmacro %}}\n")
    return folder


def _operation(project: Path, macro: str) -> list[str]:
    return [DBT, "run-operation", macro, "--project-dir", str(project), "--profiles-dir",
            str(project), "--no-use-colors", "--no-partial-parse",
            "--target-path", str(project / "target")]


def _env(**extra) -> dict[str, str]:
    return {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **extra}


def test_a_forked_run_answers_as_the_program_does(starter, project):
    for macro in ("greet", "no_such_macro"):
        command = _operation(project, macro)
        env = _env(GREETING=f"world-{macro}")
        program = run_child(command, env=env, cwd=project)
        forked = run_forked(starter, command, env, project)
        assert forked.returncode == program.returncode, forked.stdout
        assert (forked.returncode == 0) == (macro == "greet"), forked.stdout
        if macro == "greet":  # the caller's environment reached the copy, nothing else said
            assert forked.stderr == program.stderr == ""
            assert f"hello world-{macro}" in forked.stdout
            assert f"hello world-{macro}" in program.stdout
        else:
            assert "no_such_macro" in forked.stdout + forked.stderr


def _copies_in(folder: Path) -> set[int]:
    """Copies of a dbt starter at work in ``folder``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if state != "Z" and b"servicepulse.dbt_starter" in command and cwd == folder:
            found.add(int(entry.name))
    return found


def _gone(folder: Path, within: float = 15) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not _copies_in(folder):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_forked_run_ends_with_its_caller(starter, project, tmp_path, signum):
    """The caller killed outright (the copy sees its request close) or stopped (SIGTERM
    is passed on to the copy's group): the spinning copy is gone."""
    folder = tmp_path / "run"
    folder.mkdir()
    caller = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""\
        import os
        from pathlib import Path
        from servicepulse.dbt_starter import run_forked
        run_forked(Path({str(starter)!r}), {_operation(project, 'spin')!r},
                   dict(os.environ), {str(folder)!r})
        """)], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _copies_in(folder):
            assert caller.poll() is None, caller.communicate()
            assert time.monotonic() < deadline, "the copy never started"
            time.sleep(0.05)
        time.sleep(1)
        assert _copies_in(folder) and caller.poll() is None, "the copy is not at work"
        caller.send_signal(signum)
        caller.wait(30)
        assert _gone(folder), "the forked dbt outlived its caller"
    finally:
        caller.kill()
        for pid in _copies_in(folder):
            os.kill(pid, signal.SIGKILL)


def _copy_in(folder: Path) -> int:
    """The copy at work in ``folder`` (its supervisor shares the folder, not the group)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for pid in _copies_in(folder):
            with contextlib.suppress(ProcessLookupError):
                if os.getpgid(pid) == pid:
                    return pid
        time.sleep(0.05)
    raise AssertionError(f"no copy at work in {folder}")


def test_a_copy_ended_by_a_signal_answers_that_signal(starter, project, tmp_path):
    """As subprocess says of the program: a copy killed by SIGTERM returns -SIGTERM."""
    folder = tmp_path / "run"
    folder.mkdir()
    done = {}
    caller = threading.Thread(target=lambda: done.update(result=run_forked(
        starter, _operation(project, "spin"), _env(), folder, timeout=120)))
    caller.start()
    try:
        os.kill(_copy_in(folder), signal.SIGTERM)
        caller.join(60)
        assert not caller.is_alive()
        assert done["result"].returncode == -signal.SIGTERM
        assert _gone(folder)
    finally:
        for pid in _copies_in(folder):
            os.kill(pid, signal.SIGKILL)


def leave_a_stubborn_child(argv: list[str]) -> None:
    """A run (in place of dbt's) that leaves a child behind in its group, one that ignores
    SIGTERM and holds the caller's stderr open; it prints the child's pid."""
    child = subprocess.Popen(["sh", "-c", 'trap "" TERM; echo $$; exec sleep 300'],
                             stdout=subprocess.PIPE, text=True)
    print(child.stdout.readline().strip(), flush=True)


def test_what_a_copy_leaves_in_its_group_is_killed_when_it_exits(tmp_path):
    started = _start_dbt_starter([
        sys.executable, "-c",
        ("import sys; from pathlib import Path; from servicepulse.dbt_starter import serve; "
         "from tests.test_dbt_starter import leave_a_stubborn_child; "
         "serve(Path(sys.argv[1]), run=leave_a_stubborn_child)")])
    try:
        done = run_forked(Path(started.args[-1]), ["stubborn"], _env(), tmp_path, timeout=60)
    finally:
        end_group(started)
    assert done.returncode == 0, done.stderr
    left = int(done.stdout)
    deadline = time.monotonic() + 15
    while Path(f"/proc/{left}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{left}").exists(), "the copy's child outlived it"


def test_a_starter_that_does_not_answer_is_unavailable(tmp_path, monkeypatch):
    """A socket that takes requests but never answers (a stuck starter): the caller
    gives up after ANSWER_SECONDS, and may run dbt otherwise."""
    monkeypatch.setattr(dbt_starter, "ANSWER_SECONDS", 1)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stuck.bind(str(tmp_path / "stuck.sock"))
    stuck.listen(8)
    try:
        started = time.monotonic()
        with pytest.raises(StarterUnavailable):
            run_forked(tmp_path / "stuck.sock", ["dbt", "--version"], _env(), tmp_path)
        assert time.monotonic() - started < 10
    finally:
        stuck.close()


def test_without_a_starter_dbt_runs_as_the_program(project, tmp_path, caplog):
    from servicepulse import transform
    from tests.conftest import settings_for

    settings = settings_for(tmp_path, tmp_path / "sources",
                            **{"warehouse.dbt_starter": str(tmp_path / "nobody.sock")})
    settings.duckdb_path.parent.mkdir(parents=True)
    command = _operation(project, "greet")
    done = transform._run_dbt_process(settings, command, _env(GREETING="fallback"))
    assert done.returncode == 0 and "hello fallback" in done.stdout
    assert "does not answer" in caplog.text
