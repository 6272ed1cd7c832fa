"""The generated data sets the benchmarks measure: 120 days of tickets at a given daily
volume, generated, loaded and built once under the bench folder and kept for later runs.

Shared by `benchmarks` (marts, ingest, reports) and `bench_publish` (fan-out), so neither
imports the other.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from servicepulse.constants import SOURCES

DAYS = 120
START = date(2026, 7, 26)
END_DAY = START + timedelta(days=DAYS - 1)


def bench_config(workdir: Path, sources: Path, connectors: dict | None = None,
                 warehouse: dict | None = None) -> Path:
    """A bench run's settings file in ``workdir``: its own output folder and Airflow home,
    the generated ``sources``, and a DuckDB file in ``workdir`` unless ``warehouse`` names
    another warehouse section."""
    warehouse = warehouse or {"kind": "duckdb", "duckdb_path": str(workdir / "warehouse.duckdb")}
    config = {"output_dir": str(workdir / "output"), "airflow_home": str(workdir / "airflow"),
              "warehouse": warehouse,
              "sources": {"directory": str(sources), **({"connectors": connectors}
                                                          if connectors else {})}}
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def prepare(tickets_per_day: int, root: Path) -> tuple[Path, dict[str, float]]:
    from servicepulse import pipeline
    from servicepulse.demo.generate import GenerationSpec, generate
    from servicepulse.settings import load_settings

    workdir = root / f"tickets-per-day-{tickets_per_day}"
    sources = workdir / "sources"
    timings = {}
    if not (sources / "crm_tickets.csv").exists():
        started = time.perf_counter()
        generate(GenerationSpec(out=sources, start=START, days=DAYS, seed=1,
                                tickets_per_day=tickets_per_day))
        timings["generate_s"] = time.perf_counter() - started
    config = bench_config(workdir, sources)
    settings = load_settings(config, environ={})
    if not settings.duckdb_path.exists():
        start, end = last_day_interval(settings)
        started = time.perf_counter()
        for source in SOURCES:
            pipeline.load(source, start, end, settings=settings)
        timings["load_s"] = time.perf_counter() - started
        started = time.perf_counter()
        pipeline.transform(settings=settings)
        timings["dbt_build_s"] = time.perf_counter() - started
    return config, timings


def last_day_interval(settings) -> tuple[datetime, datetime]:
    start = datetime.combine(END_DAY, datetime.min.time(), settings.tz)
    return start, start + timedelta(days=1)
