"""Readers never meet a lock (issue #27): `servicepulse kpis` run in a loop while a dbt
build writes the embedded DuckDB warehouse answers every time, with the same numbers.
DuckDB has one writer per file; a reader waits for it (saying so, bounded by
warehouse.lock_wait_seconds) instead of dying with DuckDB's lock error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta

from servicepulse.cli import main
from servicepulse.generate import GenerationSpec, generate
from tests.conftest import settings_for

SERVICEPULSE = [sys.executable, "-m", "servicepulse.cli"]
START, DAYS, WEEK = date(2026, 6, 1), 14, "2026-W23"


def test_kpis_answer_every_time_while_a_build_runs(tmp_path):
    sources = tmp_path / "sources"
    generate(GenerationSpec(out=sources, start=START, days=DAYS, seed=5, tickets_per_day=40))
    settings = settings_for(tmp_path / "run", sources)
    config = ["--config", str(settings.config_file)]
    last_night = (START + timedelta(days=DAYS - 1)).isoformat()
    assert main(["load", "all", "--date", last_night, *config]) == 0
    assert main(["build", *config]) == 0
    environment = {k: v for k, v in os.environ.items() if k != "SERVICEPULSE_DEBUG"}

    def kpis() -> subprocess.CompletedProcess:
        return subprocess.run([*SERVICEPULSE, "kpis", "--period", WEEK, "--format", "json",
                               *config], env=environment, capture_output=True, text=True,
                              timeout=600)

    before = kpis()
    assert before.returncode == 0, before.stderr
    build = subprocess.Popen([*SERVICEPULSE, "build", "--full-refresh", *config],
                             env=environment, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    answers, overlapping = [], 0
    try:
        time.sleep(1)  # dbt has started and holds the file
        while build.poll() is None or not answers:
            overlapping += build.poll() is None
            answers.append(kpis())
    finally:
        output, _ = build.communicate(timeout=600)
    assert build.returncode == 0, output
    assert overlapping >= 1, "no kpis call ran while the build did"
    for answer in answers:
        assert "Traceback" not in answer.stderr and "IOException" not in answer.stderr
        assert answer.returncode == 0, answer.stderr
        assert json.loads(answer.stdout) == json.loads(before.stdout)
