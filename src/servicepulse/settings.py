"""The one typed settings module.

Settings come from a YAML file and are overridden by environment variables named
``SERVICEPULSE__<SECTION>__<KEY>`` (double underscores separate levels). Secrets are
never read from YAML: the PostgreSQL password comes from ``SERVICEPULSE_PG_PASSWORD``
(or an Airflow connection in a deployment) and nothing else.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from servicepulse.constants import DEFAULT_REPORTING_TIMEZONE
from servicepulse.errors import UserError
from servicepulse.paths import CONFIG_DIR, CONTRACTS_FILE, PROJECT_ROOT
from servicepulse.redact import redact

ENV_PREFIX = "SERVICEPULSE__"
CONFIG_ENV_VAR = "SERVICEPULSE_CONFIG"
DEFAULT_CONFIG = CONFIG_DIR / "demo.yaml"
LOCALES = ("zh-CN", "en")


class ConfigError(UserError, ValueError):
    """A configuration problem, worded for the person who edits the file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostgresSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    dbname: str = "servicepulse"
    user: str = "postgres"
    # Session settings of every connection to the warehouse: dbt's (through libpq's
    # PGOPTIONS) and ServicePulse's own. The defaults are for building KPI marts, not
    # for serving many small queries: work_mem lets the aggregations' sorts and hashes
    # stay in memory (the server's 4MB default spilled them to disk), and jit is off
    # because compiling every large build query cost more than it saved. Any
    # PostgreSQL parameter a session may set can be added, e.g.
    # max_parallel_workers_per_gather. Measured in docs/performance.md.
    session_settings: dict[str, str] = {"work_mem": "256MB", "jit": "off"}

    @field_validator("session_settings")
    @classmethod
    def _plain_settings(cls, value: dict[str, str]) -> dict[str, str]:
        for name, setting in value.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_.]*", name):
                raise ValueError(f"{name!r} is not a PostgreSQL parameter name")
            if not re.fullmatch(r"[A-Za-z0-9_.+-]+", str(setting)):
                raise ValueError(f"{name}: {setting!r} must be one word (letters, digits, "
                                 "_ . + -), as PostgreSQL's own settings are")
        return {name: str(setting) for name, setting in value.items()}

    def libpq_options(self) -> str:
        """The session settings as libpq's ``options`` (and PGOPTIONS) value."""
        return " ".join(f"-c {name}={setting}"
                        for name, setting in self.session_settings.items())

    @property
    def password(self) -> str:
        return os.environ.get("SERVICEPULSE_PG_PASSWORD", "")

    def dsn(self) -> str:
        parts = [f"host={self.host}", f"port={self.port}", f"dbname={self.dbname}",
                 f"user={self.user}"]
        if self.password:
            parts.append(f"password={self.password}")
        if self.session_settings:
            parts.append(f"options='{self.libpq_options()}'")
        return " ".join(parts)


class WarehouseSettings(_Section):
    kind: Literal["duckdb", "postgres"] = "duckdb"
    duckdb_path: Path = Path("output/warehouse.duckdb")
    postgres: PostgresSettings = PostgresSettings()
    # Prepended to every schema (raw, staging, marts, ...) so that several
    # environments or test runs can share one PostgreSQL database.
    schema_prefix: str = ""
    # Memory DuckDB may use while dbt builds (it spills to disk beyond). Without a cap
    # it takes 80 % of the machine: 22.6 GiB of 24 building 10M tickets.
    duckdb_memory_limit: str = Field("4GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$")
    # How long a command waits for a DuckDB warehouse another process is writing (one
    # writer at a time) before it gives up with a message naming the holder. Readers
    # (kpis, report) and writers (load, build, publish) both wait; 0 = do not wait.
    lock_wait_seconds: float = Field(300, ge=0)
    # A folder where dbt's parse of the project (partial_parse.msgpack) is kept for the
    # output folders of this machine that have none yet: a new one then starts from it
    # instead of parsing the whole project, about 8 s per dbt command (CI, benchmarks,
    # several deployments on one host). dbt checks a kept parse against the project's
    # files, its own version, the vars and the profile, and parses again whatever
    # differs. Unset: each output folder parses once on its own and keeps that.
    dbt_parse_cache: Path | None = None
    # The socket of a dbt starter (`python -m servicepulse.dbt_starter SOCKET`): dbt
    # commands then run forked from that process, which has imported dbt once, instead of
    # as a new program, about 3 s of CPU less each (test runs, a developer's loop). A
    # starter that does not answer is said in the log and dbt runs as a program. Unset:
    # dbt always runs as a program (production).
    dbt_starter: Path | None = None

    @field_validator("schema_prefix")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if value and not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
            raise ValueError("must be lower-case letters, digits and underscores")
        return value

    def schema(self, name: str) -> str:
        return f"{self.schema_prefix}{name}"


class SourceMapping(_Section):
    """How a delivery from a system that is not ours becomes its contract's shape
    (config/contracts.yaml), by configuration alone. Rules apply in this order: a
    field's value comes from its delivered column (``columns``), else ``constants``;
    an empty value takes ``defaults``, then the first non-empty of ``fallbacks``;
    then ``values`` (exact) and ``value_patterns`` (regular expressions) translate it.
    """
    # delivered column -> contract field, or a list of fields it feeds,
    # e.g. {"工单号": ticket_id, closed_date: [closed_at, resolved_at]}
    columns: dict[str, str | list[str]] = {}
    # contract field -> the value every row gets (the system has one channel, say).
    constants: dict[str, str] = {}
    # contract field -> the value a row gets when it delivers none.
    defaults: dict[str, str] = {}
    # contract field -> other contract fields whose value stands in, first non-empty
    # wins, e.g. {updated_at: [closed_at, created_at]} for an export without versions.
    fallbacks: dict[str, list[str]] = {}
    # contract field -> {delivered value: contract value}, e.g. {channel: {Web: online}}
    values: dict[str, dict[str, str]] = {}
    # contract field -> {regular expression: contract value}, tried in order after
    # ``values``; the expression must match the whole value, e.g.
    # {status: {"(?i)open|assigned|in progress|pending": open}}
    value_patterns: dict[str, dict[str, str]] = {}
    # Contract fields the source does not deliver: they stay empty, and every KPI that
    # needs one is reported as not measured (never 0 %).
    absent: list[str] = []
    # contract field (or "*" for every timestamp) -> strptime formats tried in order,
    # e.g. {"*": ["%m/%d/%Y %I:%M:%S %p"]}; without one, ISO 8601 is expected. A format
    # without a time of day (%m/%d/%Y) reads a date: it stays that local date.
    timestamp_formats: dict[str, list[str]] = {}
    # Time zone of timestamps delivered without a UTC offset (default:
    # sources.naive_timestamp_timezone); without one such a value is quarantined.
    timezone: str | None = None
    # The earliest date this source's timestamps may carry (default: sources.
    # plausible_from); a row dated earlier is quarantined, e.g. customers since 1985.
    plausible_from: date | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("value_patterns")
    @classmethod
    def _valid_patterns(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for field_name, patterns in value.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"{field_name}: {pattern!r} is not a regular "
                                     f"expression: {exc}") from None
        return value

    def fields_of(self, delivered_column: str) -> list[str]:
        """The contract fields a delivered column feeds (itself when not mapped)."""
        target = self.columns.get(delivered_column, delivered_column)
        return [target] if isinstance(target, str) else list(target)


class _Connector(_Section):
    mapping: SourceMapping = SourceMapping()
    # Incremental pulls re-read from this long before the newest change already loaded
    # (rounded down to the local day), so rows committed late are not missed.
    overlap_minutes: float = Field(60, ge=0)


class FileConnector(_Connector):
    """Files dropped in a folder: a path (relative to sources.directory) or any fsspec
    URL (s3://bucket/exports/*.csv once s3fs is installed); ``*`` globs allowed."""
    kind: Literal["file"] = "file"
    location: str
    # csv | xlsx | jsonl; default: from the file's extension.
    format: Literal["csv", "xlsx", "jsonl"] | None = None
    # auto: UTF-8 (with or without BOM), else GB18030 (exports of Chinese Excel).
    encoding: Literal["auto", "utf-8", "utf-8-sig", "gb18030"] = "auto"
    sheet: str | None = None          # XLSX: the sheet (default: the first)
    # snapshot: each file is a full export of the source's current rows; every run
    # reads it for the days it replaces. deliveries: each new file carries changes;
    # each is taken once (an identical re-delivery is recognised and skipped, a
    # corrected file under the same name is a new delivery).
    mode: Literal["snapshot", "deliveries"] = "snapshot"


class SqlConnector(_Connector):
    """A database table read with SQLAlchemy, incrementally by the contract's
    version column. The URL comes from the Airflow connection ``connection_id``, else
    $SERVICEPULSE_SOURCE_<SOURCE>_URL, else ``url`` (which must not hold a password)."""
    kind: Literal["sql"]
    url: str | None = None
    connection_id: str | None = None
    table: str
    db_schema: str | None = None
    fetch_rows: int = Field(50_000, ge=1)

    @field_validator("url")
    @classmethod
    def _no_password(cls, value: str | None) -> str | None:
        if value and re.search(r"://[^/@]*:[^/@]*@", value):
            raise ValueError("holds a password; put the URL in an Airflow connection or "
                             "$SERVICEPULSE_SOURCE_<SOURCE>_URL instead")
        return value


class HttpConnector(_Connector):
    """A JSON API. The bearer token comes from the Airflow connection ``connection_id``
    (its password), else the environment variable ``token_env``
    (default $SERVICEPULSE_SOURCE_<SOURCE>_TOKEN)."""
    kind: Literal["http"]
    url: str
    connection_id: str | None = None
    token_env: str | None = None
    pagination: Literal["cursor", "page"] = "cursor"
    page_size: int = Field(500, ge=1)
    records_field: str = "data"           # the list of records in a page
    next_cursor_field: str = "next_cursor"  # cursor pagination: absent or null at the end
    updated_since_param: str = "updated_since"
    updated_before_param: str = "updated_before"
    timeout_seconds: float = Field(30, gt=0)
    # 5xx replies, 429 and connection errors are retried this many times per page,
    # waiting backoff_seconds, then twice that, ... (429: its Retry-After, if longer).
    max_attempts: int = Field(6, ge=1)
    backoff_seconds: float = Field(1, ge=0)
    max_retry_after_seconds: float = Field(300, gt=0)


class NoConnector(_Section):
    """The organisation has no such system (a 311 line without surveys, say): the source
    loads nothing, and every KPI that needs it is reported as not measured."""
    kind: Literal["none"]
    mapping: SourceMapping = SourceMapping()


Connector = Annotated[FileConnector | SqlConnector | HttpConnector | NoConnector,
                      Field(discriminator="kind")]
DEFAULT_FILES = {
    "crm_customers": "crm_customers.csv",
    "crm_tickets": "crm_tickets.csv",
    "complaints": "complaints.csv",
    "survey_responses": "surveys.csv",
    "audits": "audits.csv",
}


class DemoSystemsSettings(_Section):
    """Stand-ins for a customer's systems, for the embedded demo only."""
    # A SQLite CRM database that `servicepulse demo` fills from the generated files.
    crm_database: Path | None = None
    # `servicepulse run` and `demo` serve the generated complaints on this port of
    # 127.0.0.1 while the DAG runs, injecting a 429 and a 500 now and then.
    complaint_api_port: int | None = Field(None, ge=1, le=65535)


class SourcesSettings(_Section):
    # Base folder of file locations given as relative paths.
    directory: Path = Path("data/demo")
    # Every delivery is kept here unchanged (files, API pages, SQL extracts), with its
    # manifest; default: <output_dir>/landing.
    landing_directory: Path | None = None
    # The contracts every source is checked against (default: config/contracts.yaml).
    contracts_file: Path | None = None
    # Time zone of timestamps that arrive without a UTC offset, for every source whose
    # mapping names none.
    naive_timestamp_timezone: str | None = None
    # Dates a timestamp may plausibly carry: not before plausible_from (default: the
    # calendar's first_year, else schedule.start_date) and not after the moment of
    # loading plus plausible_days_ahead. A row outside is quarantined with the reason,
    # never loaded: one 0001-01-01 would otherwise stretch every date spine to 2,000
    # years. A source's mapping.plausible_from overrides the floor for that source.
    plausible_from: date | None = None
    plausible_days_ahead: int = Field(1, ge=0)
    demo_systems: DemoSystemsSettings | None = None
    # Landed deliveries are kept this many days after the newest interval that used
    # them (counted from the interval being loaded), then deleted with their manifests;
    # raw.deliveries keeps the record.
    landing_retention_days: int = Field(400, ge=1)
    # Memory DuckDB may use while a source loads (the warehouse's cache of what it
    # writes, the checks); it evicts or spills beyond this, so big deliveries stay flat.
    load_memory_limit: str = Field("256MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$")
    # How each source is reached (source name -> connector); a source not listed is
    # the demo's CSV file in ``directory`` (crm_tickets.csv, surveys.csv, ...).
    connectors: dict[str, Connector] = {
        name: FileConnector(location=file) for name, file in DEFAULT_FILES.items()}

    def naive_timezone(self, connector: FileConnector | SqlConnector | HttpConnector
                       | NoConnector) -> str | None:
        """The zone of this source's timestamps that carry no UTC offset, if any."""
        return connector.mapping.timezone or self.naive_timestamp_timezone

    @model_validator(mode="before")
    @classmethod
    def _file_is_the_default_kind(cls, data: Any) -> Any:
        # A source not listed under connectors is the demo's CSV file in ``directory``.
        if isinstance(data, dict) and isinstance(data.get("connectors"), dict):
            listed = {name: ({"kind": "file", **body}
                             if isinstance(body, dict) and "kind" not in body else body)
                      for name, body in data["connectors"].items()}
            data = {**data, "connectors": {
                **{name: {"kind": "file", "location": file}
                   for name, file in DEFAULT_FILES.items()}, **listed}}
        return data


class Recipient(_Section):
    email: EmailStr
    name: str
    locale: Literal["zh-CN", "en"] = "zh-CN"
    department: str | None = None  # None: the whole organisation
    # What the person does with the report (e.g. director, department head); shown in
    # the send ledger so a reviewer sees why someone receives a slice.
    role: str | None = None
    # Also attach the report's tables as a spreadsheet (the .xlsx beside the PDF).
    attach_workbook: bool = False

    @field_validator("name", "department", "role")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        # A line break in a header would end it and start another (header injection);
        # an e-mail library refuses it only when the message is built, after the send
        # is claimed. Refused here, when the configuration loads.
        if value is not None and re.search(r"[\x00-\x1f\x7f]", value):
            raise ValueError("contains a line break or another control character")
        return value


class SmtpSettings(_Section):
    """The mail server. Credentials never live here: they come from the Airflow
    connection ``connection_id`` (host, port, login, password; extra ``security``)
    when it exists, else from $SERVICEPULSE_SMTP_USER / $SERVICEPULSE_SMTP_PASSWORD."""
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    # starttls: plain connection upgraded to TLS (port 587); ssl: TLS from the first
    # byte (port 465); none: no encryption (a local relay or a test catcher only).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    connection_id: str | None = "servicepulse_smtp"
    # A CA bundle to trust instead of the system's (a private relay's certificate).
    ca_file: Path | None = None
    timeout_seconds: float = Field(30, gt=0)
    # Temporary failures (4xx replies, timeouts, refused connections) are tried this
    # many times per message, waiting retry_backoff_seconds, then twice that, ...
    max_attempts: int = Field(3, ge=1)
    retry_backoff_seconds: float = Field(5, ge=0)


class DeliverySettings(_Section):
    sender: EmailStr = "servicepulse@example.com"
    # outbox: .eml files under output/outbox (the embedded default); smtp: a mail server.
    transport: Literal["outbox", "smtp"] = "outbox"
    smtp: SmtpSettings = SmtpSettings()
    # Who receives which report (each its own list: service managers read the weekly
    # operations report, leadership the monthly review).
    weekly: list[Recipient] = []
    monthly: list[Recipient] = []
    # Who hears about failed or warning data-quality checks and about deliveries that
    # failed or whose outcome is unknown.
    data_team: list[EmailStr] = []
    # A send claimed this long ago and never confirmed is "in doubt": the worker died
    # between handing the message over and recording it. It is reported, not re-sent.
    in_doubt_after_minutes: float = Field(30, gt=0)
    # Delivered PDFs are kept under output/archive for this many days after their
    # period ends (counted from the newest period published).
    archive_retention_days: int = Field(400, ge=1)


class NotificationChannel(_Section):
    """One place alerts go. Webhook URLs and secrets never sit in this file: they come
    from the Airflow connection ``connection_id`` (URL in host or extra "url", secret
    as password), else from ``url_env`` / ``secret_env`` (default
    SERVICEPULSE_WEBHOOK_<NAME>_URL / _SECRET)."""
    kind: Literal["email", "wecom", "dingtalk", "feishu", "slack", "teams", "generic"]
    addresses: list[EmailStr] = []  # email: default the audience's (delivery.data_team)
    url_env: str | None = None
    secret_env: str | None = None
    connection_id: str | None = None


class NotificationSettings(_Section):
    """Who hears of failures and published reports, and through which channels
    (docs/alerts.md). The implicit channel "email" mails delivery.data_team."""
    channels: dict[str, NotificationChannel] = {}
    # audience -> channel names: data_team hears of every failure; reports hear
    # "report is out / delayed".
    audiences: dict[Literal["data_team", "reports"], list[str]] = {
        "data_team": ["email"], "reports": []}
    # The same failure for the same interval alerts once within this window.
    dedupe_hours: float = Field(24 * 30, gt=0)
    max_per_channel_per_hour: int = Field(30, ge=1)
    # A rate-limited webhook (HTTP 429, vendor errcode) is tried this many times.
    max_attempts: int = Field(4, ge=1)
    retry_backoff_seconds: float = Field(2, ge=0)
    timeout_seconds: float = Field(10, gt=0)


class QualitySettings(_Section):
    # "<suite>.<check>" -> severity, overriding the suite's own choice.
    severities: dict[str, Literal["critical", "warning"]] = {}
    # Source -> hours: the newest change of an interval must be this close to its end.
    freshness_lag_hours: dict[str, float] = {"crm_tickets": 6, "complaints": 24,
                                             "survey_responses": 24}
    # Rows on the interval's day vs the median of the same weekday over 4 weeks.
    volume_band: float = Field(0.5, gt=0)
    # A KPI moving more than this fraction against the previous period is flagged.
    jump_band: float = Field(0.5, gt=0)
    # DuckDB memory for the checks (its cache; it spills beyond this).
    duckdb_memory_limit: str = Field("256MB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$")


class ReportSettings(_Section):
    # The weekly breach list shows this many rows, the most overdue still-open steps
    # first; it says how many it left out (all are in marts.fct_complaint_step_breaches,
    # and each department's own report lists its own).
    breach_list_limit: int = Field(50, ge=1)
    # A long dimension (departments, complaint categories, the ranking, audits by
    # department) shows its first top_n lines by the measure that matters and the rest
    # summed as one "others" line; the full tables are in the PDF's appendix (every
    # department's KPIs as a CSV file attached to the PDF).
    top_n: int = Field(10, ge=1)
    # The weekly department table has KPIs as rows and departments as columns; A4
    # portrait has room for this many department columns beside "others" and the
    # organisation.
    department_columns: int = Field(5, ge=1, le=6)
    # A rate, mean or median over fewer cases than this (surveys, tickets, complaints)
    # is shown with its "n = ..." and is not ranked: not the summary's mover, not a
    # weakest department. Three surveys at 66.7 % say little about a department.
    min_sample: int = Field(30, ge=1)
    # The same for single KPIs whose cases are few by design: a process audit or a
    # mystery-shopper visit is a careful measurement, and a department has a handful a
    # month; three of them are a figure to rank.
    min_sample_by_kpi: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: {"TPS": 3, "TDS": 3})
    # How many survey comments the customer-feedback section quotes, the most recent
    # first, each masked (phone numbers, e-mail addresses, identity numbers and the
    # customer's name become [phone], [email], [id], [name]: reports/pii.py). 0, the
    # default, quotes none: free text may hold personal data, and the catalogue lets it
    # into a report only when the report's configuration asks for it. At most 50: a
    # report section, not an export.
    survey_comments: int = Field(0, ge=0, le=50)


class CalendarSettings(_Section):
    """The business calendar behind every "working days" KPI.

    Public holidays and adjusted working weekends of ``country`` (ISO 3166 code) and
    optional ``subdivision`` come from the dbt seed public_holidays, written from the
    ``holidays`` package by ``servicepulse calendar``; days an organisation treats
    differently go into dbt_project/seeds/calendar_overrides.csv.
    """
    country: str = "CN"
    subdivision: str | None = None
    # The years the calendar covers; by default (unset) the years of the data, from the
    # earliest to the year after the newest, so that an export years back builds as it
    # is. A fact dated outside them fails the dbt build.
    first_year: int | None = Field(None, ge=1970, le=2100)
    last_year: int | None = Field(None, ge=1970, le=2100)

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str) -> str:
        import holidays

        if value not in holidays.list_supported_countries():
            raise ValueError(f"no holiday calendar for country {value!r} in the holidays "
                             "package (use an ISO 3166 alpha-2 code such as CN, DE, US)")
        return value

    @model_validator(mode="after")
    def _ordered_years(self) -> CalendarSettings:
        if self.first_year is not None and self.last_year is not None and \
                self.first_year > self.last_year:
            raise ValueError(f"first_year {self.first_year} is after last_year {self.last_year}")
        return self


class ScheduleSettings(_Section):
    """When the Airflow DAGs may run."""
    # The first local day the DAGs run for (their start_date): a run or backfill for an
    # earlier day fails, naming this key; the scheduler never schedules earlier nights.
    # Far back by default, so that an export years back is loaded as it is.
    start_date: date = date(2000, 1, 1)
    # The nightly's heartbeat: its checks ran within this many hours, or the data team
    # is told the nightly is not running (`servicepulse heartbeat`, the report DAGs).
    heartbeat_max_age_hours: float = Field(30, gt=0)


class AirflowApiSettings(_Section):
    """A running Airflow (scheduler, API server) that `servicepulse run` triggers through
    its REST API and follows, instead of running the DAG in-process. The password comes
    from the environment variable ``password_env``, never from this file."""
    url: str | None = None          # e.g. http://localhost:8080 (the API server)
    username: str = "admin"
    password_env: str = "SERVICEPULSE_AIRFLOW_PASSWORD"
    poll_seconds: float = Field(5, gt=0)
    # A run still going after this long is left running; the command says so and fails.
    timeout_minutes: float = Field(360, gt=0)
    request_timeout_seconds: float = Field(30, gt=0)


class KpiTarget(_Section):
    """A KPI's target (and amber band) from ``effective_from`` on, for the whole
    organisation or, with ``department``, for that department's rows. The catalogue's
    targets (dbt seed kpi_definitions) hold until one of these replaces them; a period is
    judged against the target in force on its first day, so a target changed today
    never recolours a past period (docs/kpis.md, `servicepulse targets`)."""
    kpi: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    target: float = Field(allow_inf_nan=False)
    amber_band: float | None = Field(None, ge=0, allow_inf_nan=False)  # None: the catalogue's
    department: str | None = Field(None, pattern=r"^[A-Za-z0-9_.\- ]+$")
    effective_from: date
    reason: str | None = None

    @field_validator("kpi")
    @classmethod
    def _known_kpi(cls, value: str) -> str:
        import csv

        from servicepulse.paths import DBT_SEEDS_DIR

        with (DBT_SEEDS_DIR / "kpi_definitions.csv").open(encoding="utf-8") as handle:
            known = {row["kpi_id"] for row in csv.DictReader(handle)}
        if value not in known:
            raise ValueError(f"{value} is not a KPI of the catalogue (docs/kpis.md)")
        return value


KPI_FINDING_DIMENSIONS = ("organisation", "department")


class KpiFindingRule(_Section):
    """KPIs whose red periods open a corrective action: ``consecutive_red`` red periods
    in a row of one slice (the organisation, or a department) make a finding."""
    kpis: list[str] = Field(min_length=1)
    dimensions: list[Literal["organisation", "department"]] = ["department"]
    grain: Literal["week", "month"] = "week"
    consecutive_red: int = Field(2, ge=1)


class BreachFindingRule(_Section):
    """Complaint step breaches that open an action: of these severities, at least
    ``min_minutes_late`` late (an undone step counts from its deadline on)."""
    severities: list[Literal["urgent", "general"]] = ["urgent"]
    min_minutes_late: float = Field(0, ge=0)
    # None: every step (classify, dispatch, solution, close, callback, escalate).
    steps: list[str] | None = None


class AuditFindingRule(_Section):
    """Process audits and mystery-shopper visits whose total score misses their KPI's
    target (TPS, TDS) open an action."""
    kinds: list[Literal["process_audit", "mystery_shopper"]] = [
        "process_audit", "mystery_shopper"]


class ActionUser(_Section):
    """A person who signs in to the corrective-actions app. Passwords never live here:
    `servicepulse actions set-password USERNAME` stores a salted scrypt hash in the
    warehouse."""
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    name: str
    # department_head: sees and works their departments' actions; quality_team: sees
    # every department, reassigns, extends deadlines, reopens.
    role: Literal["department_head", "quality_team"]
    departments: list[str] = []
    locale: Literal["zh-CN", "en"] = "zh-CN"
    email: EmailStr | None = None

    @model_validator(mode="after")
    def _head_has_a_department(self) -> ActionUser:
        if self.role == "department_head" and not self.departments:
            raise ValueError(f"user {self.username}: a department_head needs departments")
        return self


class ActionsSettings(_Section):
    """The rectification loop (检查 → 整改 → 验证): which findings open corrective
    actions, who owns them, when they are due and how they are verified
    (docs/actions.md)."""
    kpi_rules: list[KpiFindingRule] = []
    complaint_breaches: BreachFindingRule | None = None
    audits: AuditFindingRule | None = None
    # An action is due this many working days (business calendar) after it opens.
    due_working_days: int = Field(5, ge=1)
    # Done is verified when the action's KPI is green in this many periods in a row
    # after the done date; a period off target before that reopens it.
    verify_periods: int = Field(2, ge=1)
    # Breach and audit actions are verified on their KPI at this grain.
    verify_grain: Literal["week", "month"] = "week"
    # A night looks at findings of the last this-many days; older ones were the
    # earlier nights' (a first install does not open actions for years of history).
    lookback_days: int = Field(7, ge=1)
    # The department that owns findings on the whole organisation.
    organisation_department: str = "quality"
    # department -> username of the person who owns its actions (default: the first
    # department_head of that department).
    owners: dict[str, str] = {}
    users: list[ActionUser] = []
    # Where people reach the app (e.g. https://quality.example.com): notices link to
    # the action there. None: notices carry no link.
    app_url: str | None = None
    # A session ends after this long without a page, and after session_max_hours in any
    # case; then the app asks to sign in again. Signing out ends every session of the user.
    session_minutes: float = Field(480, gt=0)
    session_max_hours: float = Field(12, gt=0)
    # Mark the session cookie Secure even when the app sees plain HTTP (it is behind a
    # TLS-terminating proxy on another host).
    https_only: bool = False
    # The environment variable holding the key that signs session cookies. Without
    # it the app makes a random key at start (everyone signs in again after a restart).
    session_key_env: str = "SERVICEPULSE_ACTIONS_SESSION_KEY"

    @model_validator(mode="after")
    def _known_people(self) -> ActionsSettings:
        names = [user.username for user in self.users]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"users listed twice: {', '.join(twice)}")
        unknown = {dept: who for dept, who in self.owners.items() if who not in names}
        if unknown:
            raise ValueError("owners name people not in actions.users: " + ", ".join(
                f"{dept}: {who}" for dept, who in unknown.items()))
        return self

    def user(self, username: str) -> ActionUser | None:
        return next((user for user in self.users if user.username == username), None)

    def owner_of(self, department: str) -> str | None:
        if department in self.owners:
            return self.owners[department]
        heads = [user.username for user in self.users
                 if user.role == "department_head" and department in user.departments]
        return heads[0] if heads else None


class Settings(_Section):
    reporting_timezone: str = DEFAULT_REPORTING_TIMEZONE
    output_dir: Path = Path("output")
    warehouse: WarehouseSettings = WarehouseSettings()
    sources: SourcesSettings = SourcesSettings()
    delivery: DeliverySettings = DeliverySettings()
    quality: QualitySettings = QualitySettings()
    notifications: NotificationSettings = NotificationSettings()
    reports: ReportSettings = ReportSettings()
    calendar: CalendarSettings = CalendarSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    airflow_home: Path = Path(".airflow")
    airflow_api: AirflowApiSettings = AirflowApiSettings()
    actions: ActionsSettings = ActionsSettings()
    # KPI targets that replace the catalogue's from a date on (KpiTarget).
    targets: list[KpiTarget] = []
    # Where relative paths in the file are resolved; set by ``load_settings``.
    base_dir: Path = PROJECT_ROOT
    config_file: Path | None = None

    @field_validator("reporting_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_target_per_day(self) -> Settings:
        seen: set[tuple[str, str | None, date]] = set()
        for target in self.targets:
            key = (target.kpi, target.department, target.effective_from)
            if key in seen:
                raise ValueError(f"targets: {target.kpi}"
                                 + (f" for {target.department}" if target.department else "")
                                 + f" is set twice from {target.effective_from}")
            seen.add(key)
        return self

    @model_validator(mode="after")
    def _someone_hears_of_failures(self) -> Settings:
        """Every audience names defined channels; and with a real mail server (the
        smtp transport: a deployment, not the embedded demo whose alerts are files in
        the outbox) a failure must reach a person: an address in delivery.data_team or
        a chat channel in the data team's audience."""
        notifications = self.notifications
        for audience, names in notifications.audiences.items():
            unknown = [n for n in names if n != "email" and n not in notifications.channels]
            if unknown:
                raise ValueError(f"notifications.audiences.{audience} names "
                                 f"{', '.join(unknown)}, not defined under "
                                 "notifications.channels")
        if self.delivery.transport == "smtp" and not self.delivery.data_team:
            chats = [n for n in notifications.audiences.get("data_team", [])
                     if n in notifications.channels
                     and notifications.channels[n].kind != "email"]
            if not chats:
                raise ValueError(
                    "delivery.data_team is empty and notifications.audiences.data_team "
                    "has no chat channel: with the smtp transport every failure would "
                    "reach nobody. Add the data team's addresses to delivery.data_team")
        return self

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.reporting_timezone)

    def path(self, value: Path) -> Path:
        return value if value.is_absolute() else (self.base_dir / value).resolve()

    @property
    def duckdb_path(self) -> Path:
        return self.path(self.warehouse.duckdb_path)

    @property
    def dbt_parse_cache_path(self) -> Path | None:
        cache = self.warehouse.dbt_parse_cache
        return self.path(cache) if cache is not None else None

    @property
    def dbt_starter_path(self) -> Path | None:
        starter = self.warehouse.dbt_starter
        return self.path(starter) if starter is not None else None

    @property
    def sources_dir(self) -> Path:
        return self.path(self.sources.directory)

    @property
    def landing_path(self) -> Path:
        configured = self.sources.landing_directory
        return self.path(configured) if configured else self.output_path / "landing"

    @property
    def contracts_path(self) -> Path:
        configured = self.sources.contracts_file
        return self.path(configured) if configured else CONTRACTS_FILE

    @property
    def output_path(self) -> Path:
        return self.path(self.output_dir)

    @property
    def airflow_home_path(self) -> Path:
        return self.path(self.airflow_home)

    def today(self) -> date:
        """Only for choosing defaults on the command line; pipelines use their interval."""
        from datetime import datetime

        return datetime.now(self.tz).date()


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__")]
        node = raw
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name}: {key!r} is not a section")
        node[keys[-1]] = yaml.safe_load(value) if value else value
    return raw


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key (check the spelling; see config/demo.yaml)"
    got = error.get("input")
    # A rejected value may hold a credential (a URL with a password): never echo one.
    shown = "" if isinstance(got, dict) else redact(f", got {got!r}")
    return f"{key}: {error['msg']}{shown}"


def load_settings(config_file: Path | str | None = None,
                  environ: dict[str, str] | None = None) -> Settings:
    """Read settings from ``config_file`` (or $SERVICEPULSE_CONFIG, or the demo config)."""
    environ = dict(os.environ if environ is None else environ)
    chosen = config_file or environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG
    path = Path(chosen).resolve()
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    for forbidden in ("password", "secret", "token"):
        if _has_key(raw, forbidden):
            raise ConfigError(
                f"config file {path}: key containing {forbidden!r} found; secrets belong in "
                "environment variables or Airflow connections (see .env.example)")
    raw = _apply_env_overrides(raw, environ)
    raw.setdefault("base_dir", str(path.parent))
    raw["config_file"] = str(path)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"config file {path}: {problems}") from None


def _has_key(node: Any, word: str) -> bool:
    if isinstance(node, dict):
        # A key ending in _env names an environment variable that holds the secret.
        return any((word in str(k).lower() and not str(k).lower().endswith("_env"))
                   or _has_key(v, word) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_key(item, word) for item in node)
    return False
