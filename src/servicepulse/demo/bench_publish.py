"""How publishing fans out: one worker process against two, on the same report.

The weekly report of a generated data set (by default bench_data.prepare's 1,000
tickets a day for 120 days, kept under the output folder) for a large organisation:
``--heads`` department heads (300), each with a department of the warehouse's
(marts.dim_departments, taken in turn, so several heads share one) and an address in
each language, zh-CN and en: 600 recipients, delivered to the file outbox (no SMTP).
The plan (pipeline.plan_report, as the DAG's plan task) makes one work item per
audience, a (locale, department) slice; every item is then run by
pipeline.render_and_send, the function the DAG's mapped task calls, in worker
processes that each take the next item from a shared queue, as Celery workers take
mapped tasks: first one worker, then two, each run on a fresh ledger and outbox (a
copy of the warehouse, whose ledger is emptied before each run); the finish step
(pipeline.finish_report) concludes. Every run must send each recipient once.

Figures: the wall time of each run (plan, items, finish) and the speed-up of two
workers, with the CPU time the workers and everything else on the machine used
meanwhile (the cores may be shared); per item the time to read the slice's mart rows,
to render its PDF and workbook, to write its e-mails and to send them (the ledger's
claims and outcomes, the outbox), and its CPU time; per worker process its resident
memory before its first item, after it and after its last, and its peak. The
generated data has few departments, so the plan has few items; a last run renders the
items again and again in one process (``--soak-renders``, 100), as the command line
publishes audience after audience, to show whether memory stays flat from one render
to the next: the first 50 renders against the last 50. Results: <out>/publish.json.

    .venv/bin/python -m servicepulse.demo.bench_publish [--config bench.yaml] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from servicepulse.demo.bench_data import prepare
from servicepulse.errors import UserError
from servicepulse.paths import PROJECT_ROOT

LOCALES = ("zh-CN", "en")
REPORT = "weekly"
WINDOW = 50  # renders compared at the start and at the end of the soak


class BenchSetupError(UserError):
    pass


def _memory_mib() -> dict[str, float]:
    """This process's resident memory now (VmRSS) and its peak so far (VmHWM), MiB."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            found[line[:5]] = int(line.split()[1]) / 1024
    return {"rss_mib": found["VmRSS"], "peak_rss_mib": found["VmHWM"]}


def _busy_cpu_seconds() -> float:
    """CPU time every core of the machine has spent busy since boot (/proc/stat): with
    our workers' own CPU time, how much other work shared the cores during a run."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _worker(config: str, items: list[dict], queue: Any, results: Any, run_id: str) -> None:
    """A worker process: take the next item's index from ``queue`` until None, run it as
    the mapped task does, report each item and, at the end, the process's memory."""

    from servicepulse import pipeline
    from servicepulse.settings import load_settings

    settings = load_settings(config, environ={})
    before = _memory_mib()
    after_first: dict[str, float] = {}
    done = 0
    while (index := queue.get()) is not None:
        started, cpu = time.perf_counter(), time.process_time()
        result = pipeline.render_and_send(items[index], run_id=run_id, settings=settings)
        done += 1
        results.put(("item", {"index": index, "wall_s": time.perf_counter() - started,
                              "cpu_s": time.process_time() - cpu,
                              **{f"{k}_s": v for k, v in result["seconds"].items()},
                              **_memory_mib(), "result": result}))
        if done == 1:
            after_first = _memory_mib()
    results.put(("worker", {"items": done, "rss_before_first_mib": before["rss_mib"],
                            "rss_after_first_mib": after_first.get("rss_mib"),
                            "peak_rss_after_first_mib": after_first.get("peak_rss_mib"),
                            "cpu_s": time.process_time(),
                            **{f"{k}_at_end": v for k, v in _memory_mib().items()}}))


def _run_items(config: Path, items: list[dict], order: list[int], workers: int,
               run_id: str) -> tuple[list[dict], list[dict], float, float]:
    """``order`` (indices into items) run by ``workers`` processes pulling from one
    queue: the per-item records, the per-worker records, the wall time, and the CPU
    seconds the whole machine spent busy meanwhile."""
    context = multiprocessing.get_context("spawn")  # fresh processes, as a worker's
    queue, results = context.Queue(), context.Queue()
    for index in order:
        queue.put(index)
    for _ in range(workers):
        queue.put(None)
    started, busy = time.perf_counter(), _busy_cpu_seconds()
    processes = [context.Process(target=_worker, args=(str(config), items, queue, results,
                                                       f"{run_id}-{n}"))
                 for n in range(workers)]
    for process in processes:
        process.start()
    done_items, done_workers = [], []
    while len(done_workers) < workers:
        kind, record = results.get(timeout=3600)
        (done_items if kind == "item" else done_workers).append(record)
    wall, busy = time.perf_counter() - started, _busy_cpu_seconds() - busy
    for process in processes:
        process.join(60)
        if process.exitcode != 0:
            raise RuntimeError(f"a worker process ended with exit code {process.exitcode}")
    return done_items, done_workers, wall, busy


def _bench_settings(config: Path, workdir: Path, heads: int) -> Path:
    """A copy of ``config`` writing to ``workdir`` (its own warehouse copy, output and
    outbox) with ``heads`` department heads in both languages as weekly recipients."""
    from servicepulse.kpis import departments
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    if settings.warehouse.kind != "duckdb":
        raise BenchSetupError("the publishing benchmark copies a DuckDB warehouse (its "
                              f"ledger is emptied between runs); {config} has "
                              f"{settings.warehouse.kind}")
    with connected(settings, read_only=True) as warehouse:
        names = departments(settings, warehouse)
    workdir.mkdir(parents=True, exist_ok=True)
    copy = workdir / "warehouse.duckdb"
    if not copy.exists() or copy.stat().st_mtime < settings.duckdb_path.stat().st_mtime:
        shutil.copyfile(settings.duckdb_path, copy)
    recipients = [{"email": f"head-{n + 1:03d}.{locale.lower()}@example.com",
                   "name": f"Department head {n + 1}", "locale": locale,
                   "department": names[n % len(names)], "role": "department head"}
                  for n in range(heads) for locale in LOCALES]
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["output_dir"] = str(workdir / "output")
    raw.setdefault("warehouse", {})["duckdb_path"] = str(copy)
    raw["delivery"] = {**raw.get("delivery", {}), "transport": "outbox",
                       "sender": "servicepulse@example.com", "weekly": recipients,
                       "data_team": []}
    path = workdir / "bench-publish.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _pass_the_gate(config: Path) -> str:
    """The data's last complete ISO week, its marts checked (the plan publishes only a
    period that passed the quality gate; the generated data set was built, not checked)."""
    from datetime import datetime, timedelta

    from servicepulse import pipeline
    from servicepulse.kpis import Period
    from servicepulse.publishing import parse_report_period
    from servicepulse.readiness import period_readiness
    from servicepulse.reports.data import data_as_of
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    with connected(settings, read_only=True) as warehouse:
        as_of = data_as_of(settings, warehouse)
    day = as_of.date()
    period = Period.last_complete("week", day + timedelta(days=1))
    with connected(settings, read_only=True) as warehouse:
        ready = period_readiness(settings, warehouse, parse_report_period(REPORT,
                                                                          period.label))
    if not ready.ready:
        start = datetime.combine(day, datetime.min.time(), settings.tz)
        pipeline.check_quality("bench-publish", start, start + timedelta(days=1), "marts",
                               settings=settings)
    return period.label


def _fresh_ledger_and_outbox(config: Path) -> None:
    from servicepulse.delivery.ledger import table_name
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    with connected(settings) as warehouse:
        warehouse.execute(f"drop table if exists {table_name(settings)}")
    for folder in ("reports", "outbox", "archive"):
        shutil.rmtree(settings.output_path / folder, ignore_errors=True)


def _sent(config: Path, period: str) -> tuple[int, int]:
    """(ledger rows sent as sequence 0, messages in the outbox) for the period."""
    from servicepulse.delivery.ledger import ledger_rows
    from servicepulse.settings import load_settings
    from servicepulse.warehouse import connected

    settings = load_settings(config, environ={})
    with connected(settings, read_only=True) as warehouse:
        rows = ledger_rows(settings, warehouse, REPORT, period)
    sent = sum(1 for r in rows if r["sequence"] == 0 and r["status"] == "sent")
    messages = len(list((settings.output_path / "outbox" / REPORT / period).glob("*.eml")))
    return sent, messages


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _publish_with(config: Path, period: str, workers: int) -> dict[str, Any]:
    """One whole publication: plan, every item by ``workers`` processes, finish."""
    from servicepulse import pipeline
    from servicepulse.settings import load_settings

    _fresh_ledger_and_outbox(config)
    settings = load_settings(config, environ={})
    started = time.perf_counter()
    planned = pipeline.plan_report(REPORT, period, run_id=f"bench-{workers}",
                                   settings=settings)
    if "skipped" in planned:
        raise BenchSetupError(f"the plan published nothing: {planned['skipped']}")
    items = planned["items"]
    plan_s = time.perf_counter() - started
    load_before = os.getloadavg()[0]
    records, worker_records, items_s, busy_s = _run_items(
        config, items, list(range(len(items))), workers, f"bench-{workers}")
    finishing = time.perf_counter()
    finished = pipeline.finish_report(items, [r["result"] for r in records],
                                      run_id=f"bench-{workers}", settings=settings)
    finish_s = time.perf_counter() - finishing
    sent, messages = _sent(config, period)
    recipients = sum(len(item["recipients"]) for item in items)
    if sent != recipients or messages != recipients:
        raise RuntimeError(f"{workers} worker(s): {sent} ledgered and {messages} messages "
                           f"for {recipients} recipients")
    return {
        "run": f"{workers} worker{'s' if workers > 1 else ''}", "workers": workers,
        "period": period, "items": len(items), "recipients": recipients,
        "delivery": finished["delivery"], "ledger_sent": sent, "outbox_messages": messages,
        "plan_s": plan_s, "items_s": items_s, "finish_s": finish_s,
        "wall_s": plan_s + items_s + finish_s,
        # How much of the machine the run had: its workers' CPU time, and everything
        # else's (another user's work on the shared cores) during the items.
        "cores": os.cpu_count(), "load_average_before": load_before,
        "workers_cpu_s": sum(w["cpu_s"] for w in worker_records),
        "others_cpu_s": max(0.0, busy_s - sum(w["cpu_s"] for w in worker_records)),
        "render_cpu_median_s": _median([r["cpu_s"] for r in records]),
        "read_median_s": _median([r["read_s"] for r in records]),
        "render_median_s": _median([r["render_s"] for r in records]),
        "render_min_s": min(r["render_s"] for r in records),
        "render_max_s": max(r["render_s"] for r in records),
        "write_median_s": _median([r["write_s"] for r in records]),
        "send_median_s": _median([r["send_s"] for r in records]),
        "per_item": [{k: v for k, v in r.items() if k != "result"}
                     | {"audience": f"{items[r['index']]['department'] or 'organisation'} "
                                    f"{items[r['index']]['locale']}",
                        "recipients": len(items[r["index"]]["recipients"])}
                     for r in sorted(records, key=lambda r: r["index"])],
        "per_worker": worker_records,
    }


def _soak(config: Path, period: str, renders: int) -> dict[str, Any]:
    """One worker process renders the plan's items round after round (after the first
    round the ledger finds every e-mail sent): is the memory of the last renders the
    memory of the first?"""
    from servicepulse.publishing import parse_report_period, plan_audiences
    from servicepulse.settings import load_settings

    # The audiences as planned (the period is delivered by now: the plan would skip it).
    items = plan_audiences(load_settings(config, environ={}),
                           parse_report_period(REPORT, period))
    order = [n % len(items) for n in range(renders)]
    records, (worker,), wall, _ = _run_items(config, items, order, 1, "bench-soak")
    rss = [r["rss_mib"] for r in records]  # in the order the one worker ran them
    window = min(WINDOW, len(rss) // 2)
    first, last = rss[:window], rss[-window:]
    return {"run": "soak, 1 worker", "workers": 1, "renders": len(records), "wall_s": wall,
            "window": window,
            "rss_first_window_peak_mib": max(first), "rss_last_window_peak_mib": max(last),
            "rss_first_window_median_mib": _median(first),
            "rss_last_window_median_mib": _median(last),
            "rss_growth_per_render_kib": (statistics.median(last) - statistics.median(first))
            * 1024 / max(1, len(rss) - window),
            "render_first_window_median_s": _median([r["render_s"] for r in
                                                     records[:window]]),
            "render_last_window_median_s": _median([r["render_s"] for r in
                                                    records[-window:]]),
            "rss_after_each_render_mib": [round(value, 1) for value in rss],
            "per_worker": [worker]}


def bench_publish(config: Path, out: Path, heads: int = 300,
                  soak_renders: int = 100) -> list[dict]:
    """The publishing benchmark on the built warehouse of ``config`` (see the module's
    doc); results also in ``out``/publish.json, one line printed per figure."""
    out = out.resolve()  # the bench's settings name their folders absolutely
    workdir = out / "publish"
    bench_config = _bench_settings(config.resolve(), workdir, heads)
    period = _pass_the_gate(bench_config)
    results = [_publish_with(bench_config, period, workers) for workers in (1, 2)]
    one, two = results
    two["speed_up"] = one["wall_s"] / two["wall_s"]
    two["items_speed_up"] = one["items_s"] / two["items_s"]
    for row in results:
        print(f"publish {period}, {row['run']}: {row['items']} items for "
              f"{row['recipients']} recipients ({row['delivery']}; ledger "
              f"{row['ledger_sent']} sent, outbox {row['outbox_messages']} messages)",
              flush=True)
        print(f"publish {period}, {row['run']}: wall {row['wall_s']:.1f} s (plan "
              f"{row['plan_s']:.1f} s, items {row['items_s']:.1f} s, finish "
              f"{row['finish_s']:.1f} s)", flush=True)
        print(f"publish {period}, {row['run']}: CPU during the items: workers "
              f"{row['workers_cpu_s']:.1f} s, other processes {row['others_cpu_s']:.1f} s, "
              f"of {row['cores']} cores x {row['items_s']:.1f} s (load average before "
              f"{row['load_average_before']:.2f})", flush=True)
        print(f"publish {period}, {row['run']}: per item: read {row['read_median_s']:.2f} s,"
              f" render {row['render_median_s']:.2f} s (min {row['render_min_s']:.2f}, max "
              f"{row['render_max_s']:.2f}), e-mails written {row['write_median_s']:.2f} s, "
              f"sent {row['send_median_s']:.2f} s; CPU {row['render_cpu_median_s']:.2f} s "
              "(medians)", flush=True)
        for n, worker in enumerate(row["per_worker"]):
            if not worker["items"]:
                print(f"publish {period}, {row['run']}: worker {n + 1}: no item left")
                continue
            print(f"publish {period}, {row['run']}: worker {n + 1}: {worker['items']} items,"
                  f" RSS {worker['rss_before_first_mib']:.0f} MiB before the first, "
                  f"{worker['rss_after_first_mib']:.0f} after it, "
                  f"{worker['rss_mib_at_end']:.0f} after the last; peak "
                  f"{worker['peak_rss_after_first_mib']:.0f} MiB after the first, "
                  f"{worker['peak_rss_mib_at_end']:.0f} MiB at the end", flush=True)
    print(f"publish {period}: speed-up of two workers: {two['speed_up']:.2f}x the whole "
          f"run, {two['items_speed_up']:.2f}x the items", flush=True)
    if soak_renders:
        soak = _soak(bench_config, period, soak_renders)
        results.append(soak)
        print(f"publish {period}, {soak['run']}: {soak['renders']} renders in "
              f"{soak['wall_s']:.1f} s; RSS peak over the first {soak['window']} "
              f"{soak['rss_first_window_peak_mib']:.0f} MiB, over the last "
              f"{soak['window']} {soak['rss_last_window_peak_mib']:.0f} MiB (medians "
              f"{soak['rss_first_window_median_mib']:.0f} / "
              f"{soak['rss_last_window_median_mib']:.0f} MiB, "
              f"{soak['rss_growth_per_render_kib']:+.0f} KiB per render); render median "
              f"{soak['render_first_window_median_s']:.2f} s first, "
              f"{soak['render_last_window_median_s']:.2f} s last", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "publish.json").write_text(json.dumps(results, indent=2))
    print(f"results: {out / 'publish.json'}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Publishing fanned out: one worker process against two.")
    parser.add_argument("--config", type=Path,
                        help="a built warehouse's settings (default: the generated data "
                             "set of --tickets-per-day, built by bench_data.prepare)")
    parser.add_argument("--tickets-per-day", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "output" / "bench")
    parser.add_argument("--heads", type=int, default=300,
                        help="department heads, each a recipient in both languages")
    parser.add_argument("--soak-renders", type=int, default=100,
                        help="renders in one process for the memory figures (0: none)")
    args = parser.parse_args(argv)
    config = args.config or prepare(args.tickets_per_day, args.out.resolve())[0]
    bench_publish(config, args.out, heads=args.heads, soak_renders=args.soak_renders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
