{#- A UTC instant (timestamptz) as wall-clock time in the reporting time zone. -#}
{% macro to_reporting_tz(column) -%}
    ({{ column }} at time zone '{{ var("reporting_timezone") }}')
{%- endmacro %}

{#- Elapsed minutes between two instants, with fractions (dbt.datediff counts
    boundaries crossed on some adapters, which is not elapsed time). -#}
{% macro minutes_between(start_column, end_column) -%}
    (cast(extract(epoch from ({{ end_column }} - {{ start_column }})) as double precision) / 60.0)
{%- endmacro %}

{#- Monday of the ISO week of a local timestamp. -#}
{% macro iso_week_start(local_column) -%}
    cast(date_trunc('week', {{ local_column }}) as date)
{%- endmacro %}
