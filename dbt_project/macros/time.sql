{#- A UTC instant (timestamptz) as wall-clock time in the reporting time zone. -#}
{% macro to_reporting_tz(column) -%}
    {{ return(adapter.dispatch('to_reporting_tz')(column)) }}
{%- endmacro %}

{% macro default__to_reporting_tz(column) -%}
    ({{ column }} at time zone '{{ var("reporting_timezone") }}')
{%- endmacro %}

{#- On DuckDB, `at time zone` goes through ICU: 1.5 s per 10M values on this 2-core
    machine. Inside the span in which the zone keeps one UTC offset (var
    reporting_utc_offset_span, which `servicepulse` computes: transform.py) the local
    time is the instant's microseconds plus that offset; outside it, or without the
    var, ICU converts. -#}
{% macro duckdb__to_reporting_tz(column) -%}
    {%- set span = var('reporting_utc_offset_span', none) -%}
    {#- A span computed for another zone (a unit test pins its own) is not used. -#}
    {%- if span and span['zone'] == var('reporting_timezone') -%}
    (case
        when epoch_us({{ column }}) >= {{ span['from_us'] }} and epoch_us({{ column }}) < {{ span['until_us'] }}
            then make_timestamp(epoch_us({{ column }}) + {{ span['offset_us'] }})
        else ({{ column }} at time zone '{{ var("reporting_timezone") }}')
    end)
    {%- else -%}
    {{ default__to_reporting_tz(column) }}
    {%- endif -%}
{%- endmacro %}

{#- A local wall-clock time in the reporting time zone as the UTC instant (timestamptz).
    The same SQL as to_reporting_tz: `at time zone` turns a timestamp into an instant
    and an instant into a timestamp; the name says which way a call site goes. -#}
{% macro from_reporting_tz(local_column) -%}
    ({{ local_column }} at time zone '{{ var("reporting_timezone") }}')
{%- endmacro %}

{#- A value known when the model is compiled (from a run_query) as a typed SQL constant;
    null when there is none. -#}
{% macro typed_literal(value, data_type) -%}
    {%- if value is none -%}
        cast(null as {{ data_type }})
    {%- else -%}
        cast('{{ value }}' as {{ data_type }})
    {%- endif -%}
{%- endmacro %}

{#- Whether a date expression lies in one of `ranges` ((first_day, last_day) pairs,
    such as the rows of a run_query), as a condition of constants. -#}
{% macro day_in_ranges(day, ranges) -%}
    (false
    {%- for first_day, last_day in ranges %}
        or {{ day }} between {{ typed_literal(first_day, 'date') }}
            and {{ typed_literal(last_day, 'date') }}
    {%- endfor %})
{%- endmacro %}

{#- Whether a local timestamp expression lies on a day of one of `ranges` (as in
    day_in_ranges), as bounds on the expression itself, which an index on it can serve;
    cast to a date, it could not. -#}
{% macro moment_in_day_ranges(moment, ranges) -%}
    (false
    {%- for first_day, last_day in ranges %}
        or ({{ moment }} >= {{ typed_literal(first_day, 'timestamp') }}
            and {{ moment }} < {{ typed_literal(last_day, 'timestamp') }} + interval '1 day')
    {%- endfor %})
{%- endmacro %}

{#- Elapsed minutes between two instants, with fractions (dbt.datediff counts
    boundaries crossed on some adapters, which is not elapsed time). -#}
{% macro minutes_between(start_column, end_column) -%}
    {{ return(adapter.dispatch('minutes_between')(start_column, end_column)) }}
{%- endmacro %}

{% macro default__minutes_between(start_column, end_column) -%}
    (cast(extract(epoch from ({{ end_column }} - {{ start_column }})) as double precision) / 60.0)
{%- endmacro %}

{#- On DuckDB the difference of two timestamptz goes through ICU's calendar: 7.8 s
    for 10M tickets' response times on this 2-core machine, against 0.3 s for the
    difference of their microseconds since the epoch (exact integers, same value). -#}
{% macro duckdb__minutes_between(start_column, end_column) -%}
    (cast(epoch_us({{ end_column }}) - epoch_us({{ start_column }}) as double precision) / 60000000.0)
{%- endmacro %}

{#- Monday of the ISO week of a local timestamp. -#}
{% macro iso_week_start(local_column) -%}
    cast(date_trunc('week', {{ local_column }}) as date)
{%- endmacro %}

{#- The first day of the period (day, ISO week or calendar month) of a local timestamp. -#}
{% macro period_start(grain, local_column) -%}
    {%- if grain == 'day' -%}
        cast({{ local_column }} as date)
    {%- else -%}
        cast(date_trunc('{{ grain }}', {{ local_column }}) as date)
    {%- endif -%}
{%- endmacro %}

{#- One period of a grain as an interval, for stepping from a period to the next. -#}
{% macro period_step(grain) -%}
    {{ {'day': "interval '1 day'", 'week': "interval '7 day'", 'month': "interval '1 month'"}[grain] }}
{%- endmacro %}

{#- Elapsed days (with fractions) between two timestamps. -#}
{% macro days_between(start_column, end_column) -%}
    ({{ minutes_between(start_column, end_column) }} / 1440.0)
{%- endmacro %}

{#- A fact's rows with the data's as-of moment (data_as_of, data_as_of_local), as a
    subquery over the model's `as_of` CTE. A model whose union branches read the same
    fact gives each branch its own such subquery, not one shared CTE: DuckDB
    materialises a CTE that several branches read, whole, so a build's time bounds (the
    KPI aggregate recomputes a few periods) would not reach the fact's scan, which
    skips the row groups outside them (facts are written in time order). -#}
{% macro fact_with_as_of(relation) -%}
    (
    select facts.*, as_of.data_as_of, as_of.data_as_of_local
    from {{ relation }} as facts
    cross join as_of
    )
{%- endmacro %}
