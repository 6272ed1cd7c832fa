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
from typing import Any, Literal

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

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "SERVICEPULSE__"
CONFIG_ENV_VAR = "SERVICEPULSE_CONFIG"
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "demo.yaml"
LOCALES = ("zh-CN", "en")


class ConfigError(ValueError):
    """A configuration problem, worded for the person who edits the file."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostgresSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(5432, ge=1, le=65535)
    dbname: str = "servicepulse"
    user: str = "postgres"

    @property
    def password(self) -> str:
        return os.environ.get("SERVICEPULSE_PG_PASSWORD", "")

    def dsn(self) -> str:
        parts = [f"host={self.host}", f"port={self.port}", f"dbname={self.dbname}",
                 f"user={self.user}"]
        if self.password:
            parts.append(f"password={self.password}")
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

    @field_validator("schema_prefix")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if value and not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
            raise ValueError("must be lower-case letters, digits and underscores")
        return value

    def schema(self, name: str) -> str:
        return f"{self.schema_prefix}{name}"


class SourcesSettings(_Section):
    directory: Path = Path("data/demo")
    # The file each source is delivered as, relative to ``directory``.
    files: dict[str, str] = {
        "crm_customers": "crm_customers.csv",
        "crm_tickets": "crm_tickets.csv",
        "complaints": "complaints.csv",
        "survey_responses": "surveys.csv",
        "audits": "audits.csv",
    }
    # Time zone of timestamps that arrive without a UTC offset.
    naive_timestamp_timezone: str | None = None


class Recipient(_Section):
    email: EmailStr
    name: str
    locale: Literal["zh-CN", "en"] = "zh-CN"
    department: str | None = None  # None: the whole organisation
    # What the person does with the report (e.g. director, department head); shown in
    # the send ledger so a reviewer sees why someone receives a slice.
    role: str | None = None


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


class CalendarSettings(_Section):
    """The business calendar behind every "working days" KPI.

    Public holidays and adjusted working weekends come from the ``holidays`` package
    for ``country`` (ISO 3166 code) and optional ``subdivision``; days an organisation
    treats differently go into dbt_project/seeds/calendar_overrides.csv.
    """
    country: str = "CN"
    subdivision: str | None = None
    # The calendar covers these years; a fact dated outside them fails the dbt build.
    first_year: int = Field(2020, ge=1990, le=2100)
    last_year: int = Field(2030, ge=1990, le=2100)

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
        if self.first_year > self.last_year:
            raise ValueError(f"first_year {self.first_year} is after last_year {self.last_year}")
        return self


class Settings(_Section):
    reporting_timezone: str = "Asia/Shanghai"
    output_dir: Path = Path("output")
    warehouse: WarehouseSettings = WarehouseSettings()
    sources: SourcesSettings = SourcesSettings()
    delivery: DeliverySettings = DeliverySettings()
    quality: QualitySettings = QualitySettings()
    reports: ReportSettings = ReportSettings()
    calendar: CalendarSettings = CalendarSettings()
    airflow_home: Path = Path(".airflow")
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

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.reporting_timezone)

    def path(self, value: Path) -> Path:
        return value if value.is_absolute() else (self.base_dir / value).resolve()

    @property
    def duckdb_path(self) -> Path:
        return self.path(self.warehouse.duckdb_path)

    @property
    def sources_dir(self) -> Path:
        return self.path(self.sources.directory)

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
    shown = "" if isinstance(got, dict) else f", got {got!r}"
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
        return any(word in str(k).lower() or _has_key(v, word) for k, v in node.items())
    if isinstance(node, list):
        return any(_has_key(item, word) for item in node)
    return False
