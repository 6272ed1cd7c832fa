{{ config(materialized='incremental', unique_key='calendar_bounds', incremental_strategy='delete+insert',
          on_schema_change='sync_all_columns') }}
-- Grain: one row. The years the business calendar covers: the configured years
-- (vars calendar_first_year / calendar_last_year, from the settings), else the years of
-- the raw data, from its earliest timestamp to the year after its newest (deadlines run
-- on past the data), within 1970-2100; around the current year while there is no data.
-- It reads the raw tables, not the staging views: a min/max per table costs one column
-- scan, where the staging views would first pick every row's latest version. Every
-- timestamp column of a raw table counts except the loader's own (named _…).
-- A one-row table, incremental: a nightly build takes the bounds of the rows loaded
-- since the last (by the raw tables' load-time index) with the bounds it keeps, where
-- a view scanned every raw timestamp of the history once per reader (the calendar and
-- three tests: 3-5 s each at 10M tickets on PostgreSQL). The years only widen: a
-- timestamp corrected away keeps its year in the calendar until a full refresh.
{%- set configured_first = var('calendar_first_year', none) -%}
{%- set configured_last = var('calendar_last_year', none) -%}
{%- set scans = [] -%}
{%- for table in raw_table_systems() -%}
    {%- set relation = raw_table(table) -%}
    {%- if execute and (configured_first is none or configured_last is none) -%}
        {%- set existing = load_relation(relation) -%}
        {%- if existing is not none -%}
            {%- set columns = [] -%}
            {%- for column in adapter.get_columns_in_relation(existing)
                    if 'timestamp' in column.dtype | lower and not column.name.startswith('_') -%}
                {%- do columns.append(adapter.quote(column.name)) -%}
            {%- endfor -%}
            {%- if columns -%}
                {%- do scans.append((relation, columns)) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endif -%}
{%- endfor %}

with raw_bounds as (
    {%- for relation, columns in scans %}
    select
        least({% for column in columns %}min({{ column }}){{ ', ' if not loop.last }}{% endfor %}) as earliest,
        greatest({% for column in columns %}max({{ column }}){{ ', ' if not loop.last }}{% endfor %}) as newest,
        max(_loaded_at) as loaded_through
    from {{ relation }}
    {%- if is_incremental() %}
    where _loaded_at > {{ incremental_watermark('loaded_through') }}
    {%- endif %}
    {{ 'union all' if not loop.last }}
    {%- else %}
    select cast(null as timestamp with time zone) as earliest,
           cast(null as timestamp with time zone) as newest,
           cast(null as timestamp with time zone) as loaded_through
    {%- endfor %}
    {%- if is_incremental() and scans %}
    union all
    select earliest, newest, loaded_through from {{ this }}
    {%- endif %}
),

data_years as (
    select
        min(earliest) as earliest,
        max(newest) as newest,
        max(loaded_through) as loaded_through,
        cast(extract(year from min(earliest) {{ 'at time zone \'UTC\'' if scans }}) as integer) as first_year,
        cast(extract(year from max(newest) {{ 'at time zone \'UTC\'' if scans }}) as integer) as last_year
    from raw_bounds
),

first_year as (
    select
        {% if configured_first is not none -%}
        {{ configured_first }}
        {%- else -%}
        -- (greatest and least skip nulls: no data must not become 1970)
        case when first_year is null then cast(extract(year from current_date) as integer) - 1
             else greatest(1970, first_year) end
        {%- endif %} as first_year,
        last_year as data_last_year,
        earliest,
        newest,
        loaded_through
    from data_years
)

select
    first_year,
    {% if configured_last is not none -%}
    {{ configured_last }}
    {%- else -%}
    greatest(
        case when data_last_year is null then cast(extract(year from current_date) as integer) + 1
             else least(2100, data_last_year + 1) end,
        first_year
    )
    {%- endif %} as last_year,
    'calendar' as calendar_bounds,
    earliest,
    newest,
    loaded_through
from first_year
