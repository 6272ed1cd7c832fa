"""`servicepulse`: the command line for data teams."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from datetime import date, datetime, time, timedelta
from pathlib import Path

from servicepulse.constants import DEFAULT_REPORTING_TIMEZONE
from servicepulse.errors import BUG_EXIT_CODE, explain_failure
from servicepulse.redact import redact
from servicepulse.settings import ConfigError, Settings, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-22") from None


def _defects(text: str) -> dict[str, int]:
    from servicepulse.demo.generate import parse_defects

    try:
        return parse_defects(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_generate(args: argparse.Namespace) -> int:
    from servicepulse.demo.generate import GenerationSpec, generate

    written = generate(GenerationSpec(out=Path(args.out), start=args.start, days=args.days,
                                      seed=args.seed, tickets_per_day=args.tickets_per_day,
                                      timezone=args.timezone,
                                      defects=args.defects))
    for path in written.values():
        print(f"wrote {path}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from servicepulse.airflow_runner import run_monthly_report, run_nightly, run_weekly_report
    from servicepulse.demo.systems import demo_systems_running, fill_demo_crm
    from servicepulse.kpis import Period

    settings = _settings(args)
    last = args.to or args.date
    if last < args.date:
        raise ConfigError(f"--to {last} is before --date {args.date}")
    days = [args.date + timedelta(days=n) for n in range((last - args.date).days + 1)]
    demo = settings.sources.demo_systems
    if demo and demo.crm_database and not settings.path(demo.crm_database).exists():
        print(f"filling the demo CRM database {fill_demo_crm(settings)} from the generated files")
    logs = []
    with demo_systems_running(settings) as api:
        if api:
            print(f"serving the demo complaint API at {api.url}")
        for day in days:              # a backfill: night after night, in order
            outcome = run_nightly(settings, day)
            logs.append(outcome.log_file)
            print(f"{outcome.dag_id} for {outcome.day} (data interval "
                  f"{outcome.data_interval[0]} – {outcome.data_interval[1]}): {outcome.state}")
    # What the scheduler does on each night's checked-marts Asset: the last complete
    # week and month go out if they have not yet (the ledger makes a repeat a no-op);
    # over a range, each such week and month once.
    weeks = dict.fromkeys(Period.last_complete_week(day + timedelta(days=1)) for day in days)
    months = dict.fromkeys(Period.last_complete_month(day + timedelta(days=1)) for day in days)
    for period in weeks:
        weekly = run_weekly_report(settings, period.label, period.end)
        logs.append(weekly.log_file)
        print(f"{weekly.dag_id} for {period.label}: {weekly.state}")
    for period in months:
        monthly = run_monthly_report(settings, period.label, period.end)
        logs.append(monthly.log_file)
        print(f"{monthly.dag_id} for {period.label}: {monthly.state}")
    _print_artefacts(settings)
    print(f"  Airflow logs:    {', '.join(str(log) for log in dict.fromkeys(logs))}")
    for period in weeks:
        _print_ledger(settings, "weekly", period.label)
    for period in months:
        _print_ledger(settings, "monthly", period.label)
    return 0


def _print_ledger(settings: Settings, report: str, period: str) -> None:
    from servicepulse.delivery.ledger import ledger_rows
    from servicepulse.warehouse import connected

    with connected(settings, read_only=True) as warehouse:
        rows = ledger_rows(settings, warehouse, report, period)
    print(f"  Deliveries of {report} {period} ({settings.delivery.transport}):")
    for row in rows:
        print(f"    {row['recipient']:<32} #{row['sequence']} {row['status']:<9} "
              f"{row['smtp_reply'] or row['error'] or ''}")


def cmd_load(args: argparse.Namespace) -> int:
    """One source for one local day, outside Airflow: what onboarding a source needs."""
    from servicepulse.constants import SOURCES
    from servicepulse.demo.systems import demo_systems_running
    from servicepulse.pipeline import load

    settings = _settings(args)
    start = datetime.combine(args.date, time(), settings.tz)
    sources = [args.source] if args.source != "all" else list(SOURCES)
    if args.dry_run:
        return _dry_run(settings, sources, start, start + timedelta(days=1), args.format)
    with demo_systems_running(settings):
        settings = _settings(args)  # the demo API's address, if it had to move
        for source in sources:
            # A source that is not connected still gets its (empty) raw table.
            result = load(source, start, start + timedelta(days=1), settings=settings)
            if settings.sources.connectors[source].kind == "none":
                print(f"{source}: not connected (kind: none): nothing to load; the KPIs "
                      "that need it are reported as not measured")
                continue
            outside = result["rows_outside_window"]
            print(f"{source}: {result['rows_loaded']} of {result['rows_in_delivery']} rows "
                  f"loaded into partitions {' – '.join(result['partitions'])}, "
                  f"{result['rows_quarantined']} quarantined"
                  + (f", {outside} outside the interval" if outside else "")
                  + f", {result['files']} file(s)"
                  + (f"; new columns kept in _extras: {', '.join(result['new_columns'])}"
                     if result["new_columns"] else "")
                  + "".join(f"\n  skipped {note}" for note in result["skipped"]))
            _print_not_loaded(settings, source, result)
    return 0


def _print_not_loaded(settings: Settings, source: str, result: dict) -> None:
    """Every row the load did not take, by reason: the first ones by file and row, the
    rest counted with where to find them."""
    from servicepulse.load import SAMPLE_ROWS
    from servicepulse.warehouse import connected

    if result["rows_quarantined"]:
        table = f'"{settings.warehouse.schema("raw")}".quarantined_rows'
        with connected(settings, read_only=True) as warehouse:
            rows = warehouse.fetch_frame(
                f"select source_file, source_row, field, value, reason from {table} "
                f"where source = ? and batch_id = ? order by source_row, field "
                f"limit {SAMPLE_ROWS + 1}", [source, result["batch_id"]])
        for row in rows.head(SAMPLE_ROWS).itertuples():
            value = "" if row.value is None else repr(row.value)[:80]
            print(f"  quarantined: {row.source_file}, row {row.source_row}, "
                  f"{row.field} = {value}: {row.reason}")
        if len(rows) > SAMPLE_ROWS:
            print(f"  ... every quarantined row with its reason: {table} where source = "
                  f"'{source}' and batch_id = '{result['batch_id']}'")
    for note in result["outside_sample"]:
        print(f"  outside the interval (loaded by the run for its day): {note}")
    if result["rows_outside_window"] > len(result["outside_sample"]):
        print(f"  ... and {result['rows_outside_window'] - len(result['outside_sample'])} "
              "more outside the interval (counted per file in the batch manifest)")


def _dry_run(settings: Settings, sources: list[str], start: datetime, end: datetime,
             output: str) -> int:
    """What loading would do, from a throw-away warehouse: nothing configured is written."""
    from servicepulse.demo.systems import demo_systems_running
    from servicepulse.onboarding import dry_run_load

    results = []
    with demo_systems_running(settings):
        for source in sources:
            results.append(dry_run_load(settings, source, start, end))
    if output == "json":
        print(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
        return 0
    for r in results:
        if not r.connected:
            print(f"{r.source} (dry run): not connected (kind: none)")
        else:
            print(f"{r.source} (dry run, nothing written): {r.rows_read} rows read from "
                  f"{r.files} file(s); {r.rows_loaded} would load into partitions "
                  f"{' – '.join(r.partitions)}, {r.rows_quarantined} would be quarantined"
                  + (f", {r.rows_outside_window} lie outside the window"
                     if r.rows_outside_window else ""))
        for q in r.quarantine:
            print(f"  quarantined: {q['field']}: {q['reason']}: {q['rows']} row(s), e.g. "
                  + "; ".join(q["first"]))
        if r.new_columns:
            print(f"  columns the contract does not know (kept in _extras): "
                  f"{', '.join(r.new_columns)}")
        print(f"  KPIs it makes measurable: {', '.join(r.measurable) or 'none'}")
        for kpi, reason in r.not_measured.items():
            print(f"  not measured: {kpi}: {reason}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from servicepulse.pipeline import transform

    print(transform(_settings(args), full_refresh=args.full_refresh)["dbt"])
    return 0


def cmd_calendar(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from servicepulse import business_calendar
    from servicepulse.settings import CalendarSettings

    configured = _settings(args).calendar
    try:
        calendar = CalendarSettings(country=args.country or configured.country,
                                    subdivision=args.subdivision if args.country
                                    else configured.subdivision)
    except ValidationError as error:
        reason = "; ".join(problem["msg"].removeprefix("Value error, ")
                           for problem in error.errors())
        raise ConfigError(f"servicepulse calendar: {reason}") from None
    days = business_calendar.write_seed(calendar)
    first, last = business_calendar.SEED_YEARS
    print(f"{business_calendar.SEED}: {days} public holidays and worked weekend days of "
          f"{business_calendar.label(calendar)}, "
          f"{first}-{last} (holidays package); commit the file, then run "
          "`servicepulse build --full-refresh` so past deadlines follow it")
    return 0


def cmd_kpis(args: argparse.Namespace) -> int:
    from servicepulse.kpis import Period, kpi_document
    from servicepulse.warehouse import connected

    settings = _settings(args)
    with connected(settings, read_only=True) as warehouse:
        document = kpi_document(settings, warehouse, Period.parse(args.period),
                                args.department, args.by)
    if args.format == "json":
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return 0
    period = document["period"] + ("" if document["complete"] else
                                   f" (incomplete: data through {document['data_as_of']})")
    if args.by:
        for value, kpis in document["slices"].items():
            _print_kpi_table(f"{period}  {args.by} = {value}", kpis)
        return 0
    _print_kpi_table(f"{period}  {document['department'] or 'whole organisation'}",
                     document["kpis"])
    return 0


def cmd_heartbeat(args: argparse.Namespace) -> int:
    """For a monitor outside Airflow (cron, a probe): 0 when the nightly checked data
    within schedule.heartbeat_max_age_hours, else 1, and the data team is alerted once."""
    from datetime import UTC, datetime

    from servicepulse.heartbeat import check_heartbeat

    result = check_heartbeat(_settings(args), datetime.now(UTC))
    if args.format == "json":
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(("ok: " if result["fresh"] else "STALE: ") + str(result["summary"]))
        if not result["fresh"]:
            print(f"  data team alerted: {result.get('alert')}")
    return 0 if result["fresh"] else 1


def _print_kpi_table(title: str, kpis: dict) -> None:
    def fmt(value, digits=4):
        return "-" if value is None else f"{value:.{digits}f}"

    print(title)
    print(f"{'KPI':<19}{'value':>12}{'target':>10}  {'status':<7}{'previous':>12}"
          f"{'numerator':>12}{'denominator':>13}")
    for kpi_id, kpi in kpis.items():
        if kpi["status"] == "not_measured":
            print(f"{kpi_id:<19}{'n/a':>12}{fmt(kpi['target']):>10}  not measured: "
                  f"{kpi['reason']}")
            continue
        print(f"{kpi_id:<19}{fmt(kpi['value']):>12}{fmt(kpi['target']):>10}  "
              f"{kpi['status'] or '-':<7}{fmt(kpi['previous']):>12}"
              f"{fmt(kpi['numerator'], 1):>12}{fmt(kpi['denominator'], 0):>13}")
    print()


def cmd_report(args: argparse.Namespace) -> int:
    from servicepulse.publishing import parse_report_period, render_report
    from servicepulse.warehouse import connected

    settings = _settings(args)
    period = parse_report_period(args.kind, args.period)
    with connected(settings, read_only=True) as warehouse:
        path, _ = render_report(settings, warehouse, period, args.locale, args.department,
                                Path(args.out))
    print(f"wrote {path}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from servicepulse import pipeline
    from servicepulse.kpis import Period

    settings = _settings(args)
    kind = "week" if args.kind == "weekly" else "month"
    label = args.period or Period.last_complete(kind, settings.today()).label
    _print_publish(settings, args.kind,
                   pipeline.publish_report(args.kind, label, settings=settings))
    return 0


def _print_publish(settings: Settings, report: str, result: dict) -> None:
    for path in result.get("reports", []):
        print(f"report  {path}")
    print(f"{report} {result['period']}: " + (result.get("delivery") or result.get("skipped")))
    _print_ledger(settings, report, result["period"])


def cmd_resend(args: argparse.Namespace) -> int:
    from servicepulse import pipeline

    settings = _settings(args)
    _print_publish(settings, args.kind, pipeline.publish_report(
        args.kind, args.period, recipient=args.recipient, resend_reason=args.reason,
        settings=settings))
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    from servicepulse.delivery import ledger
    from servicepulse.warehouse import connected

    settings = _settings(args)
    with connected(settings) as warehouse:
        if args.action == "settle":
            if not (args.report and args.period and args.recipient) or args.delivered is None:
                raise ledger.SettleError("settle needs --report, --period, --recipient and "
                                         "--delivered or --not-delivered")
            settled = ledger.settle(settings, warehouse, args.report, args.period,
                                    args.recipient, args.delivered, args.note)
            print(f"{settled['report']} {settled['period']} to {settled['recipient']} "
                  f"(#{settled['sequence']}): now {settled['status']}")
            return 0
        rows = ledger.ledger_rows(settings, warehouse, args.report, args.period)
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return 0
    print(f"{'report':<8}{'period':<10}{'recipient':<32}{'#':>2}  {'kind':<10}{'status':<10}"
          f"{'finished (UTC)':<21}detail")
    for row in rows:
        finished = str(row["finished_at"] or "")[:19]
        detail = row["error"] or row["smtp_reply"] or ""
        print(f"{row['report']:<8}{row['period']:<10}{row['recipient']:<32}"
              f"{row['sequence']:>2}  {row['kind']:<10}{row['status']:<10}{finished:<21}"
              f"{detail[:90]}")
    return 0


def cmd_targets(args: argparse.Namespace) -> int:
    """Every KPI target and amber band with the days it holds: the catalogue's, and the
    settings' (``targets``) from their effective dates."""
    from servicepulse.targets import describe, targets_in_force

    entries = [e for e in targets_in_force(_settings(args))
               if (not args.kpi or e.kpi_id == args.kpi)
               and (not args.department or e.department in (None, args.department))]
    if args.format == "json":
        print(json.dumps([{**entry.__dict__,
                           "effective_from": entry.effective_from.isoformat(),
                           "effective_until": entry.effective_until and
                           entry.effective_until.isoformat()} for entry in entries],
                         ensure_ascii=False, indent=2))
        return 0
    print(f"{'kpi':<18}{'department':<18}{'target (days it holds)':<42}{'band':<8}origin")
    for entry in entries:
        band = "" if entry.amber_band is None else f"{entry.amber_band:g}"
        origin = entry.origin + (f": {entry.reason}" if entry.reason else "")
        print(f"{entry.kpi_id:<18}{entry.department or 'organisation':<18}"
              f"{describe(entry):<42}{band:<8}{origin}")
    return 0


ACTION_JSON_FIELDS = ("action_id", "finding_kind", "kpi_id", "complaint_id", "audit_id",
                      "step", "department", "owner", "problem", "standard", "opened_at",
                      "due_on", "status", "overdue", "days_overdue", "cause_group", "cause",
                      "measure", "done_at", "done_by", "verified_at", "reopened_count",
                      "history_count")


def cmd_actions(args: argparse.Namespace) -> int:
    """The rectification loop: list actions, track them for a night, serve the app,
    set a user's password."""
    from servicepulse.actions import people, store
    from servicepulse.warehouse import connected

    settings = _settings(args)
    if args.action == "serve":
        from servicepulse.actions.web import serve

        print(f"corrective actions: http://{args.host}:{args.port}/  (Ctrl-C stops)")
        serve(settings, args.host, args.port)
        return 0
    if args.action == "set-password":
        import getpass

        if not args.username:
            raise ConfigError("set-password needs a user name (one of actions.users)")
        password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else \
            getpass.getpass(f"new password for {args.username}: ")
        with connected(settings) as warehouse:
            people.set_password(settings, warehouse, args.username, password)
        print(f"password set for {args.username}")
        return 0
    if args.action == "track":
        from servicepulse import pipeline

        if args.date is None:
            raise ConfigError("track needs --date (the local day the night ran for)")
        start = datetime.combine(args.date, time(), tzinfo=settings.tz)
        summary = pipeline.track_actions(start, start + timedelta(days=1), settings)
        summary["notices"] = pipeline.send_action_notices(start, start + timedelta(days=1),
                                                          settings)
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return 0
    with connected(settings) as warehouse:
        store.ensure_tables(settings, warehouse)
        rows = store.actions(settings, warehouse,
                             [args.department] if args.department else None)
    rows = store.filter_rows(rows, args.status, settings.today())
    if args.format == "json":
        shown = [{key: row.get(key) for key in ACTION_JSON_FIELDS} for row in rows]
        print(json.dumps(shown, ensure_ascii=False, indent=2, default=str))
        return 0
    print(f"{'action':<20}{'department':<18}{'status':<10}{'due':<12}{'owner':<16}problem")
    for row in rows:
        status = row["status"] + ("!" if row["overdue"] else "")
        print(f"{row['action_id']:<20}{row['department']:<18}{status:<10}"
              f"{row['due_on']!s:<12}{(row['owner'] or '-'):<16}{row['problem'][:80]}")
    if not rows:
        print("(no actions)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """generate + run + publish, the embedded demo end to end."""
    from servicepulse.airflow_runner import run_monthly_report, run_nightly, run_weekly_report
    from servicepulse.demo.generate import GenerationSpec, generate
    from servicepulse.demo.systems import demo_systems_running, fill_demo_crm
    from servicepulse.kpis import Period

    settings = _settings(args)
    yesterday = settings.today() - timedelta(days=1)
    start = yesterday - timedelta(days=args.days - 1)
    print(f"1/4 generating {args.days} days of demo data ({start} – {yesterday}) "
          f"into {settings.sources_dir}")
    generate(GenerationSpec(out=settings.sources_dir, start=start, days=args.days,
                            seed=args.seed, timezone=settings.reporting_timezone))
    if crm := fill_demo_crm(settings):
        print(f"    and the CRM's customers and tickets into the database {crm}")
    print(f"2/4 running the nightly pipeline for {yesterday} through Airflow")
    with demo_systems_running(settings) as api:
        if api:
            print(f"    (the complaint system's API served at {api.url})")
        outcome = run_nightly(settings, yesterday)
    print(f"    {outcome.dag_id}: {outcome.state} (log: {outcome.log_file})")
    week = Period.last_complete_week(settings.today())
    print(f"3/4 the weekly report DAG for {week.label} through Airflow")
    weekly = run_weekly_report(settings, week.label, yesterday)
    print(f"    {weekly.dag_id}: {weekly.state} (log: {weekly.log_file})")
    month = Period.last_complete_month(settings.today())
    print(f"4/4 the monthly report DAG for {month.label} through Airflow")
    monthly = run_monthly_report(settings, month.label, yesterday)
    print(f"    {monthly.dag_id}: {monthly.state} (log: {monthly.log_file})")
    _print_artefacts(settings)
    for report, period in (("weekly", week), ("monthly", month)):
        print(f"  {report.capitalize()} reports:")
        for path in sorted((settings.output_path / "reports" / report / period.label)
                           .glob("*.pdf")):
            print(f"    {path}")
    _print_ledger(settings, "weekly", week.label)
    _print_ledger(settings, "monthly", month.label)
    return 0


def _print_artefacts(settings: Settings) -> None:
    print("Artefacts:")
    where = (f"DuckDB {settings.duckdb_path}" if settings.warehouse.kind == "duckdb"
             else f"PostgreSQL {settings.warehouse.postgres.host}/"
                  f"{settings.warehouse.postgres.dbname}")
    print(f"  Warehouse:       {where} (schemas {settings.warehouse.schema('raw')}, "
          f"{settings.warehouse.schema('staging')}, {settings.warehouse.schema('marts')}, "
          f"{settings.warehouse.schema('quality')}, {settings.warehouse.schema('delivery')})")
    quality = sorted((settings.output_path / "quality").glob("*.json"),
                     key=lambda p: p.stat().st_mtime)
    if quality:
        print(f"  Quality results: {quality[-1].parent}/ (latest: {quality[-1].name})")
    overview = settings.output_path / "quality" / "index.html"
    if overview.exists():
        print(f"  Quality page:    {overview} (offline)")
    docs = settings.output_path / "quality" / "data_docs" / "index.html"
    if docs.exists():
        print(f"  Data Docs:       {docs} (styles load from the internet)")
    landing = settings.landing_path
    if landing.exists():
        print(f"  Landed deliveries: {landing} (manifests under <source>/batches/)")
    print(f"  Reports:         {settings.output_path / 'reports'}")
    print(f"  Outbox:          {settings.output_path / 'outbox'}"
          + ("" if settings.delivery.transport == "outbox" else " (alerts only: reports go by "
             f"SMTP to {settings.delivery.smtp.host})"))
    print(f"  Archive:         {settings.output_path / 'archive'} (delivered PDFs by SHA-256; "
          "index.html lists every published report and workbook)")
    _print_actions(settings)


def _print_actions(settings: Settings) -> None:
    """How many corrective actions the night left, and how to work them."""
    from servicepulse.actions import store
    from servicepulse.warehouse import connected

    with connected(settings, read_only=True) as warehouse:
        if not warehouse.table_exists(store.schema(settings), store.ACTIONS):
            return
        rows = store.actions(settings, warehouse)
    counts = {status: sum(1 for row in rows if row["status"] == status)
              for status in store.STATUSES}
    shown = ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "none"
    print(f"  Corrective actions: {shown} (servicepulse actions list; to work them: "
          "servicepulse actions set-password quality, then servicepulse actions serve)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="servicepulse", description=__doc__)
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback of any failure (also $SERVICEPULSE_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--config", help="settings file (default: $SERVICEPULSE_CONFIG, "
                                          "else config/demo.yaml)")
        return sub

    generate = commands.add_parser("generate", help="write a deterministic demo data set")
    generate.add_argument("--out", required=True)
    generate.add_argument("--start", required=True, type=_date)
    generate.add_argument("--days", required=True, type=int)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--tickets-per-day", type=int, default=300)
    generate.add_argument("--timezone", default=DEFAULT_REPORTING_TIMEZONE,
                          help="zone of the generated timestamps' offsets")
    generate.add_argument("--defects", type=_defects, default={}, help="inject known defects for testing the quality "
                          "gate, e.g. time_order=3,orphan_customer=2,stale (kinds: "
                          "satisfaction_range, time_order, orphan_customer, stale, volume_drop)")
    generate.set_defaults(handler=cmd_generate)

    run = with_config(commands.add_parser("run", help="run the nightly DAG for a local date "
                                                      "through Airflow"))
    run.add_argument("--date", required=True, type=_date,
                     help="the local day to run the nightly for (any day since the DAGs' "
                          "start date, settings schedule.start_date)")
    run.add_argument("--to", type=_date, help="a backfill: every night from --date to this "
                     "day, in order, then each week and month they complete, once")
    run.set_defaults(handler=cmd_run)

    load = with_config(commands.add_parser(
        "load", help="load one source (or all) for a local day, outside Airflow, and show "
                     "what was loaded and quarantined"))
    load.add_argument("source", help="a source name (crm_tickets, survey_responses, ...) or all")
    load.add_argument("--date", required=True, type=_date)
    load.add_argument("--dry-run", action="store_true",
                      help="load into a throw-away warehouse and say what would load, what "
                           "would be quarantined and why, and which KPIs the source makes "
                           "measurable; nothing configured is written")
    load.add_argument("--format", choices=["json", "table"], default="table",
                      help="--dry-run output")
    load.set_defaults(handler=cmd_load)

    build = with_config(commands.add_parser(
        "build", help="build the marts from the raw tables (dbt build)"))
    build.add_argument("--full-refresh", action="store_true",
                       help="rebuild the incremental facts from every raw row (after changing "
                            "the calendar, a deadline or a fact's columns)")
    build.set_defaults(handler=cmd_build)

    calendar = with_config(commands.add_parser(
        "calendar", help="write a country's public holidays into the business calendar's "
                         "dbt seed (dbt_project/seeds/public_holidays.csv)"))
    calendar.add_argument("--country", help="ISO 3166 code (default: settings calendar.country)")
    calendar.add_argument("--subdivision", help="the holidays package's subdivision code")
    calendar.set_defaults(handler=cmd_calendar)

    kpis = with_config(commands.add_parser("kpis", help="print KPIs from the marts"))
    kpis.add_argument("--period", required=True,
                      help="local day (2026-11-23), ISO week (2026-W47) or calendar month "
                           "(2026-11)")
    kpis.add_argument("--department")
    kpis.add_argument("--by", metavar="DIMENSION",
                      help="one row set per value of a dimension: department, agent, channel, "
                           "service_type, customer_type, service_level, region, "
                           "complaint_category, priority")
    kpis.add_argument("--format", choices=["json", "table"], default="table")
    kpis.set_defaults(handler=cmd_kpis)

    report = with_config(commands.add_parser("report", help="render a report PDF"))
    report.add_argument("kind", choices=["weekly", "monthly"])
    report.add_argument("--period", required=True)
    report.add_argument("--locale", choices=["zh-CN", "en"], default="zh-CN")
    report.add_argument("--department")
    report.add_argument("--out", required=True)
    report.set_defaults(handler=cmd_report)

    publish = with_config(commands.add_parser(
        "publish", help="render a report for every recipient and e-mail it (once)"))
    publish.add_argument("kind", choices=["weekly", "monthly"])
    publish.add_argument("--period", help="ISO week (weekly) or month (monthly), default: "
                                          "the last complete one")
    publish.set_defaults(handler=cmd_publish)

    resend = with_config(commands.add_parser(
        "resend", help="send one recipient a report again, deliberately (recorded in the "
                       "send ledger with the reason)"))
    resend.add_argument("kind", choices=["weekly", "monthly"])
    resend.add_argument("--period", required=True,
                        help="ISO week such as 2026-W47 (weekly), month such as 2026-10 (monthly)")
    resend.add_argument("--recipient", required=True, help="a configured recipient's e-mail")
    resend.add_argument("--reason", required=True, help="why, for the ledger")
    resend.set_defaults(handler=cmd_resend)

    deliveries = with_config(commands.add_parser(
        "deliveries", help="the send ledger: what went to whom; settle an in-doubt send"))
    deliveries.add_argument("action", nargs="?", choices=["list", "settle"], default="list")
    deliveries.add_argument("--report", default=None)
    deliveries.add_argument("--period")
    deliveries.add_argument("--recipient")
    outcome = deliveries.add_mutually_exclusive_group()
    outcome.add_argument("--delivered", action="store_true", default=None,
                         help="settle: the mail server's log shows it was accepted")
    outcome.add_argument("--not-delivered", dest="delivered", action="store_false",
                         help="settle: it never arrived; the next run sends it")
    deliveries.add_argument("--note", default="", help="settle: what you checked")
    deliveries.add_argument("--format", choices=["json", "table"], default="table")
    deliveries.set_defaults(handler=cmd_deliveries)

    heartbeat = with_config(commands.add_parser(
        "heartbeat", help="is the nightly running? exit 1 (and alert the data team) when its "
                          "checks have not run within schedule.heartbeat_max_age_hours"))
    heartbeat.add_argument("--format", choices=["json", "text"], default="text")
    heartbeat.set_defaults(handler=cmd_heartbeat)

    targets = with_config(commands.add_parser(
        "targets", help="KPI targets and bands with the days they hold (the catalogue's "
                        "and the settings' targets from their effective dates)"))
    targets.add_argument("--kpi")
    targets.add_argument("--department", help="that department's own targets and the "
                                              "organisation's")
    targets.add_argument("--format", choices=["json", "table"], default="table")
    targets.set_defaults(handler=cmd_targets)

    actions = with_config(commands.add_parser(
        "actions", help="corrective actions (检查 → 整改 → 验证): list them, serve the app, "
                        "set a user's password, track a night"))
    actions.add_argument("action", nargs="?", default="list",
                         choices=["list", "serve", "set-password", "track"])
    actions.add_argument("username", nargs="?", help="set-password: the user (actions.users)")
    actions.add_argument("--department")
    actions.add_argument("--status", choices=["open", "overdue", "done", "verified",
                                              "reopened"])
    actions.add_argument("--format", choices=["json", "table"], default="table")
    actions.add_argument("--host", default="127.0.0.1", help="serve: address to listen on")
    actions.add_argument("--port", type=int, default=8780, help="serve: port")
    actions.add_argument("--date", type=_date, help="track: the local day the night ran for")
    actions.set_defaults(handler=cmd_actions)

    demo = with_config(commands.add_parser("demo", help="generate + run + publish"))
    demo.add_argument("--days", type=int, default=120)
    demo.add_argument("--seed", type=int, default=7)
    demo.set_defaults(handler=cmd_demo)
    return parser


WRITING_COMMANDS = {"load", "build", "run", "publish", "resend", "demo"}


def _writes(args: argparse.Namespace) -> bool:
    if args.command == "load":
        return not args.dry_run
    if args.command == "deliveries":
        return args.action == "settle"
    if args.command == "actions":
        return args.action == "track"
    return args.command in WRITING_COMMANDS


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 the input or configuration is the user's to fix; 1 a
    permanent failure a person must look at (a failed critical check, a refused or
    in-doubt send); 75 temporary, run again later (a busy warehouse, a server that
    does not answer, a full disk); 130 interrupted; 70 a bug (printed with its
    traceback). Expected failures print one line, never a traceback (unless --debug)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("SERVICEPULSE_DEBUG", "") not in ("", "0")
    try:
        if _writes(args):
            from servicepulse.run_lock import run_lock

            # One writing run per warehouse: a second one waits in line, saying for whom.
            with run_lock(_settings(args), args.command):
                return args.handler(args)
        return args.handler(args)
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        explained = explain_failure(exc)
        if explained is None or debug:
            traceback.print_exc()
        if explained is None:
            print(redact(f"servicepulse {args.command}: unexpected error (a bug; please "
                         f"report it with the traceback above): {type(exc).__name__}: {exc}"),
                  file=sys.stderr)
            return BUG_EXIT_CODE
        message, code = explained
        print(redact(f"error: {message}"), file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
