"""Type and check a batch of delivered text rows against the contract, in SQL (DuckDB).

One statement turns a batch into ``checked``: per contract column its mapped text
(``v_<i>``), its typed value (``t_<i>``) and, if the value breaks a rule, why
(``e_<i>``). Good rows are those without a reason; every reason becomes one
quarantine row naming file, row, field, value and reason. Columns the contract does
not know are kept as JSON in ``_extras`` and reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from servicepulse.settings import SourceMapping
from servicepulse.sources.contracts import SourceContract
from servicepulse.sources.readers import ROW_COLUMN

UNREADABLE = "_unreadable"
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


def plan_checks(contract: SourceContract, mapping: SourceMapping, delivered: list[str],
                timezone: str | None) -> CheckPlan:
    """``delivered``: the batch's column names after mapping.columns was applied;
    ``timezone``: the zone of timestamps without an offset (None: such are bad)."""
    present = set(delivered)
    selects = [f"{ROW_COLUMN}"]
    for index, column in enumerate(contract.columns):
        if column.name in present:
            # trim() on every value costs more than all the typing together; padded
            # values are rare, so only they are trimmed.
            name = quote(column.name)
            text = (f"nullif(case when {name} like ' %' or {name} like '% ' "
                    f"then trim({name}) else {name} end, '')")
        else:
            text = "cast(null as varchar)"
        translations = mapping.values.get(column.name) or {}
        if translations:
            cases = " ".join(f"when {literal(k)} then {literal(v)}"
                             for k, v in translations.items())
            text = f"(case {text} {cases} else {text} end)"
        selects.append(f"{text} as v_{index}")
    selects.append(f"{quote(UNREADABLE)} as _unreadable" if UNREADABLE in present
                   else "cast(null as varchar) as _unreadable")
    extras = tuple(name for name in delivered
                   if name not in contract.column_names and name != UNREADABLE
                   and name != ROW_COLUMN)
    if extras:
        pairs = ", ".join(f"{literal(name)}, {quote(name)}" for name in extras)
        selects.append(f"cast(json_object({pairs}) as varchar) as _extras")
    else:
        selects.append("cast(null as varchar) as _extras")

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
        elif column.type == "timestamp":
            expression, type_error = _timestamp(value, column.name, mapping, timezone)
        else:
            expression, type_error = value, None
        typed.append(f"{expression} as t_{index}")
        rules = []
        if column.not_null:
            rules.append(f"when {value} is null then 'value is required'")
        if type_error:
            rules.append(f"when {value} is not null and t_{index} is null "
                         f"then {literal(type_error)}")
        if column.allowed:
            allowed = ", ".join(literal(a) for a in column.allowed)
            rules.append(f"when {value} is not null and {value} not in ({allowed}) "
                         f"then {literal('not one of ' + ', '.join(column.allowed))}")
        errors.append(f"case {' '.join(rules)} end as e_{index}" if rules
                      else f"cast(null as varchar) as e_{index}")
    checked_sql = (
        f"select *, ({' or '.join(f'e_{i} is not null' for i in range(len(contract.columns)))}"
        f" or _unreadable is not null) as is_bad from ("
        f"select *, {', '.join(errors)} from ("
        f"select *, {', '.join(typed)} from ("
        f"select {', '.join(selects)} from incoming_batch)))")
    return CheckPlan(contract, checked_sql, extras)


def _timestamp(value: str, name: str, mapping: SourceMapping,
               timezone: str | None) -> tuple[str, str]:
    formats = mapping.timestamp_formats.get(name) or mapping.timestamp_formats.get("*") or []
    iso_with_offset = f"case when regexp_matches({value}, {literal(_OFFSET)}) " \
                      f"then try_cast({value} as timestamptz) end"
    if timezone:
        naive = f"timezone({literal(timezone)}, try_cast({value} as timestamp))"
        iso = f"coalesce({iso_with_offset}, {naive})"
    else:
        iso = iso_with_offset
    if not formats:
        message = "not an ISO 8601 timestamp with a UTC offset" if not timezone else \
            "not an ISO 8601 timestamp"
        return iso, message
    attempts = []
    for fmt in formats:
        parsed = f"try_strptime({value}, {literal(fmt)})"
        if "%z" in fmt or "%Z" in fmt:
            attempts.append(f"cast({parsed} as timestamptz)")
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
