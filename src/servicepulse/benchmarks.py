"""`make bench`: how long the data-quality gate takes, and how much memory, by size.

Generates a data set per size (cached in output/bench/), loads it and builds the
marts, then runs every suite (raw before dbt, marts after, as the DAG does) in a
child process and reports its wall time and peak resident memory. Two sizes show
whether memory stays flat as rows grow (the checks run in the warehouse).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from servicepulse.settings import PROJECT_ROOT

DAYS = 120
START = date(2026, 7, 26)
END_DAY = START + timedelta(days=DAYS - 1)


def _config(workdir: Path, sources: Path) -> Path:
    config = {"output_dir": str(workdir / "output"), "airflow_home": str(workdir / "airflow"),
              "warehouse": {"kind": "duckdb", "duckdb_path": str(workdir / "warehouse.duckdb")},
              "sources": {"directory": str(sources)}}
    path = workdir / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def prepare(tickets_per_day: int, root: Path) -> tuple[Path, dict[str, float]]:
    from servicepulse import pipeline
    from servicepulse.generate import GenerationSpec, generate
    from servicepulse.settings import load_settings

    workdir = root / f"tickets-per-day-{tickets_per_day}"
    sources = workdir / "sources"
    timings = {}
    if not (sources / "crm_tickets.csv").exists():
        started = time.perf_counter()
        generate(GenerationSpec(out=sources, start=START, days=DAYS, seed=1,
                                tickets_per_day=tickets_per_day))
        timings["generate_s"] = time.perf_counter() - started
    config = _config(workdir, sources)
    settings = load_settings(config, environ={})
    if not settings.duckdb_path.exists():
        start, end = _interval(settings)
        started = time.perf_counter()
        for source in pipeline.SOURCES:
            pipeline.load(source, start, end, settings=settings)
        timings["load_s"] = time.perf_counter() - started
        started = time.perf_counter()
        pipeline.transform(settings=settings)
        timings["dbt_build_s"] = time.perf_counter() - started
    return config, timings


def _interval(settings) -> tuple[datetime, datetime]:
    start = datetime.combine(END_DAY, datetime.min.time(), settings.tz)
    return start, start + timedelta(days=1)


def run_checks_in_child(config: Path) -> dict[str, float]:
    code = ("import sys, time, json; from servicepulse.benchmarks import _child; "
            "print(json.dumps(_child(sys.argv[1])))")
    started = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True,
                               text=True, check=True)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = time.perf_counter() - started
    return result


def _child(config: str) -> dict[str, float]:
    from servicepulse.quality.runner import run_checks
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    start, end = _interval(settings)
    with connected(settings, read_only=True) as warehouse:
        rows = int(warehouse.fetch_frame("select count(*) as n from raw.crm_tickets")["n"][0])
    timings: dict[str, float] = {"raw_ticket_rows": rows}
    checks = 0
    for layer in ("raw", "marts"):
        started = time.perf_counter()
        report = run_checks(settings, "bench", start, end, layer)
        timings[f"{layer}_checks_s"] = time.perf_counter() - started
        checks += len(report.results)
        timings[f"{layer}_failed"] = len(report.critical_failures) + len(report.warnings)
    timings["checks"] = checks
    # The child's own peak (Linux reports KiB): imports, GX and the checks, nothing else.
    timings["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets-per-day", type=int, nargs="+", default=[1000, 9800],
                        help="sizes to run (120 days each; 9800/day is about 1M tickets)")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "output" / "bench")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.tickets_per_day:
        config, preparation = prepare(size, args.out)
        measured = run_checks_in_child(config)
        results.append({"tickets_per_day": size, **preparation, **measured})
        row = results[-1]
        print(f"quality gate, {row['raw_ticket_rows']:>9,} raw ticket rows: "
              f"{row['checks']:.0f} checks, raw {row['raw_checks_s']:.1f} s + marts "
              f"{row['marts_checks_s']:.1f} s (process {row['process_wall_s']:.1f} s), "
              f"peak RSS {row['peak_rss_mib']:.0f} MiB", flush=True)
    (args.out / "quality-gate.json").write_text(json.dumps(results, indent=2))
    print(f"results: {args.out / 'quality-gate.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
