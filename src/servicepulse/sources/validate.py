"""Type and check a batch of delivered text rows against the contract, in SQL (DuckDB).

One statement turns a batch into ``checked``: per contract column its mapped text
(``v_<i>``), its typed value (``t_<i>``) and, if the value breaks a rule, why
(``e_<i>``). Good rows are those without a reason; every reason becomes one
quarantine row naming file, row, field, value and reason. Columns the contract does
not know are kept as JSON in ``_extras`` and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from servicepulse.settings import SourceMapping
from servicepulse.sources.contracts import SourceContract
from servicepulse.sources.readers import ROW_COLUMN, UNREADABLE

_OFFSET = r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$"


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class CheckPlan:
    contract: SourceContract
    checked_sql: str            # SELECT ... FROM incoming_batch
    extras: tuple[str, ...]     # delivered columns the contract does not know

    def column_index(self, name: str) -> int:
        return self.contract.column_names.index(name)


def delivered_fields(mapping: SourceMapping, delivered: list[str]) -> dict[str, list[str]]:
    """Contract field -> the delivered columns that feed it, in delivery order."""
    feeding: dict[str, list[str]] = {}
    for name in delivered:
        for field_name in mapping.fields_of(name):
            feeding.setdefault(field_name, []).append(name)
    return feeding


def provided_fields(mapping: SourceMapping, delivered: list[str]) -> set[str]:
    """The contract fields a delivery with these columns gives a value source."""
    provided = set(delivered_fields(mapping, delivered)) | set(mapping.constants) | \
        set(mapping.defaults)
    for field_name, others in mapping.fallbacks.items():
        if any(other in provided for other in others):
            provided.add(field_name)
    return provided


def missing_fields(contract: SourceContract, mapping: SourceMapping,
                   delivered: list[str]) -> tuple[list[str], list[str]]:
    """(required, undeclared): contract fields no delivered column, constant, default or
    fallback provides. Required ones the source must have; the others it may lack, but
    only when the mapping says so (``absent``), so that a renamed column is not
    silently read as missing."""
    provided = provided_fields(mapping, delivered)
    required, undeclared = [], []
    for column in contract.columns:
        if column.name in provided:
            continue
        if column.required:
            required.append(column.name)
        elif column.name not in mapping.absent and not column.optional:
            undeclared.append(column.name)
    return required, undeclared


def _text_of(column: str) -> str:
    # trim() on every value costs more than all the typing together; padded values
    # are rare, so only they are trimmed.
    name = quote(column)
    return (f"nullif(case when {name} like ' %' or {name} like '% ' "
            f"then trim({name}) else {name} end, '')")


@dataclass(frozen=True)
class PlausibleWindow:
    """The instants a timestamp may carry: [earliest, latest]."""
    earliest: datetime
    latest: datetime

    def reason(self, planned: bool = False) -> str:
        return (f"outside the plausible dates {self.earliest.date().isoformat()} – "
                f"{self.latest_for(planned).date().isoformat()} (settings sources."
                "plausible_from or the source's mapping.plausible_from; plausible_days_ahead)")

    def latest_for(self, planned: bool) -> datetime:
        # A promise may be made a while ahead; a year is beyond any service promise.
        return self.latest + timedelta(days=366) if planned else self.latest


# C0 control characters and DEL. Free text may hold tab, line feed and carriage return.
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
_LINE_OR_TAB = r"[\t\n\r]"


def plan_checks(contract: SourceContract, mapping: SourceMapping, delivered: list[str],
                timezone: str | None, reporting_timezone: str = "UTC",
                plausible: PlausibleWindow | None = None) -> CheckPlan:
    """``delivered``: the batch's column names as delivered; ``timezone``: the zone of
    timestamps without an offset (None: such are bad); ``reporting_timezone``: the zone
    a date without a time of day is a local date in (it must not change day);
    ``plausible``: the window every timestamp must lie in (None: any)."""
    feeding = delivered_fields(mapping, delivered)
    provided = provided_fields(mapping, delivered)

    def own_text(field_name: str) -> str:
        # A field's value before fallbacks: its delivered column(s), else its constant;
        # an empty value takes the default.
        if field_name in mapping.constants:
            text = literal(mapping.constants[field_name])
        elif field_name in feeding:
            texts = [_text_of(name) for name in feeding[field_name]]
            text = texts[0] if len(texts) == 1 else f"coalesce({', '.join(texts)})"
        else:
            text = "cast(null as varchar)"
        if field_name in mapping.defaults:
            text = f"coalesce({text}, {literal(mapping.defaults[field_name])})"
        return text

    selects = [f"{ROW_COLUMN}"]
    for index, column in enumerate(contract.columns):
        text = own_text(column.name)
        others = [own_text(other) for other in mapping.fallbacks.get(column.name, [])]
        if others:
            text = f"coalesce({text}, {', '.join(others)})"
        exact = " ".join(f"when {literal(k)} then {literal(v)}"
                         for k, v in (mapping.values.get(column.name) or {}).items())
        patterns = " ".join(
            f"when regexp_full_match({text}, {literal(pattern)}) then {literal(v)}"
            for pattern, v in (mapping.value_patterns.get(column.name) or {}).items())
        if patterns:
            text = f"(case {patterns} else {text} end)" if not exact else \
                f"(case {text} {exact} else (case {patterns} else {text} end) end)"
        elif exact:
            text = f"(case {text} {exact} else {text} end)"
        selects.append(f"{text} as v_{index}")
    selects.append(f"{quote(UNREADABLE)} as _unreadable" if UNREADABLE in delivered
                   else "cast(null as varchar) as _unreadable")
    known = set(contract.column_names)
    extras = tuple(name for name in delivered
                   if not (set(mapping.fields_of(name)) & known) and name != UNREADABLE
                   and name != ROW_COLUMN)
    selects.append(_json_of(extras) + " as _extras")
    # The delivered text of every column the mapping renames or whose values it
    # rewrites or parses, kept beside the mapped value.
    rewritten = {name for rule in (mapping.values, mapping.value_patterns,
                                   mapping.timestamp_formats) for name in rule}
    if "*" in mapping.timestamp_formats:
        rewritten |= {c.name for c in contract.columns if c.type == "timestamp"}
    originals = tuple(
        name for name in delivered if name not in extras and name != UNREADABLE
        and name != ROW_COLUMN and (mapping.fields_of(name) != [name]
                                    or set(mapping.fields_of(name)) & rewritten))
    selects.append(_json_of(originals) + " as _original")

    typed, errors = [], []
    for index, column in enumerate(contract.columns):
        value = f"v_{index}"
        if column.type == "integer":
            expression = (f"case when isfinite(try_cast({value} as double)) and "
                          f"try_cast({value} as double) = round(try_cast({value} as double)) "
                          f"then try_cast(try_cast({value} as double) as bigint) end")
            type_error = "not a whole number"
        elif column.type == "number":
            expression = (f"case when isfinite(try_cast({value} as double)) "
                          f"then try_cast({value} as double) end")
            type_error = "not a number"
        elif column.type == "boolean":
            expression = (f"case when lower({value}) in ('true', 't', 'yes', 'y', '1') then true "
                          f"when lower({value}) in ('false', 'f', 'no', 'n', '0') then false end")
            type_error = "not true or false (map the source's words under mapping.values)"
        elif column.type == "timestamp":
            expression, type_error = _timestamp(value, column.name, mapping, timezone,
                                                reporting_timezone)
        else:
            expression, type_error = value, None
        typed.append(f"{expression} as t_{index}")
        rules = []
        # A field the source does not have (mapping.absent) is empty, not missing.
        if column.not_null and column.name in provided:
            rules.append(f"when {value} is null then 'value is required'")
        if type_error:
            rules.append(f"when {value} is not null and t_{index} is null "
                         f"then {literal(type_error)}")
        if column.type == "timestamp" and plausible is not None:
            rules.append(
                f"when t_{index} is not null and (t_{index} < "
                f"{literal(plausible.earliest.isoformat())}::timestamptz or t_{index} > "
                f"{literal(plausible.latest_for(column.planned).isoformat())}::timestamptz) "
                f"then {literal(plausible.reason(column.planned))}")
        if column.type == "text":
            rules.append(f"when regexp_matches({value}, {literal(_CONTROL)}) then "
                         f"{literal('contains a control character (NUL or another)')}")
            if not column.free_text:
                rules.append(f"when regexp_matches({value}, {literal(_LINE_OR_TAB)}) then "
                             f"{literal('a key or code with a line break or tab')}")
        if column.allowed:
            allowed = ", ".join(literal(a) for a in column.allowed)
            rules.append(f"when {value} is not null and {value} not in ({allowed}) "
                         f"then {literal('not one of ' + ', '.join(column.allowed))}")
        # A record that could not be read at all is quarantined once, for that.
        errors.append(f"case when _unreadable is not null then null {' '.join(rules)} "
                      f"end as e_{index}" if rules else f"cast(null as varchar) as e_{index}")
    checked_sql = (
        f"select *, ({' or '.join(f'e_{i} is not null' for i in range(len(contract.columns)))}"
        f" or _unreadable is not null) as is_bad from ("
        f"select *, {', '.join(errors)} from ("
        f"select *, {', '.join(typed)} from ("
        f"select {', '.join(selects)} from incoming_batch)))")
    return CheckPlan(contract, checked_sql, extras)


def _json_of(columns: tuple[str, ...]) -> str:
    if not columns:
        return "cast(null as varchar)"
    pairs = ", ".join(f"{literal(name)}, {quote(name)}" for name in columns)
    return f"cast(json_object({pairs}) as varchar)"


_TIME_OF_DAY = ("%H", "%I", "%M", "%S", "%p", "%X", "%c", "%T", "%R", "%f", "%z", "%Z")


def _timestamp(value: str, name: str, mapping: SourceMapping, timezone: str | None,
               reporting_timezone: str) -> tuple[str, str]:
    """The SQL that reads a delivered timestamp and the reason when it cannot.

    A value with a UTC offset is that instant; one without is local time in
    ``timezone``. A date without a time of day (2023-04-05, or a format without
    %H/%I/%M) is midnight of that date in the reporting time zone: a date stays the
    same date in every report, not noon, and not the day before because the source's
    zone lies behind the reporting one."""
    formats = mapping.timestamp_formats.get(name) or mapping.timestamp_formats.get("*") or []
    iso_with_offset = f"case when regexp_matches({value}, {literal(_OFFSET)}) " \
                      f"then try_cast({value} as timestamptz) end"
    iso_date = (f"case when regexp_full_match({value}, '\\d{{4}}-\\d{{2}}-\\d{{2}}') then "
                f"timezone({literal(reporting_timezone)}, "
                f"cast(try_cast({value} as date) as timestamp)) end")
    if timezone:
        naive = f"timezone({literal(timezone)}, try_cast({value} as timestamp))"
        iso = f"coalesce({iso_with_offset}, {iso_date}, {naive})"
    else:
        iso = f"coalesce({iso_with_offset}, {iso_date})"
    if not formats:
        message = "not an ISO 8601 timestamp with a UTC offset" if not timezone else \
            "not an ISO 8601 timestamp"
        return iso, message
    attempts = []
    for fmt in formats:
        parsed = f"try_strptime({value}, {literal(fmt)})"
        if "%z" in fmt or "%Z" in fmt:
            attempts.append(f"cast({parsed} as timestamptz)")
        elif not any(directive in fmt for directive in _TIME_OF_DAY):
            attempts.append(f"timezone({literal(reporting_timezone)}, {parsed})")
        elif timezone:
            attempts.append(f"timezone({literal(timezone)}, {parsed})")
        else:
            raise ValueError(f"timestamp format {fmt!r} for {name} has no %z: set the "
                             "source's mapping.timezone (or sources.naive_timestamp_timezone)")
    return (f"coalesce({', '.join(attempts)}, {iso})",
            f"not a timestamp in the formats {', '.join(formats)} or ISO 8601")


def quarantine_sql(plan: CheckPlan, where: str, partition: str) -> str:
    """One row per broken rule of the checked rows matching ``where``."""
    parts = [(f"select {ROW_COLUMN} as source_row, '(row)' as field, "
              f"cast(null as varchar) as value, _unreadable as reason, "
              f"{partition} as partition_date "
              f"from checked where _unreadable is not null and ({where})")]
    for index, column in enumerate(plan.contract.columns):
        parts.append(f"select {ROW_COLUMN}, {literal(column.name)}, v_{index}, e_{index}, "
                     f"{partition} from checked where e_{index} is not null and ({where})")
    return " union all ".join(parts)
