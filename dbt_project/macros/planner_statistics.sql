{#- After a table is built on PostgreSQL: its planner statistics, and the indexes a
    nightly build looks its rows up by.
    - Statistics: a table dbt has just created has none until autovacuum gets to it
      (never, where autovacuum is off), and the planner then guesses a few hundred
      rows. With guessed sizes the daily KPI table joined its 270,000 values by nested
      loops: 194 s at 1M tickets, 2.7 s once the aggregate under it had statistics.
    - Indexes, on an incremental model: its unique key (the delete of delete+insert
      finds the rows it replaces) and built_at (the next model's
      written_after_last_build). Created once after a full build; kept up by
      PostgreSQL as rows arrive.
    DuckDB keeps statistics as it writes and skips row groups by min/max: nothing to do
    there. A project post-hook (dbt_project.yml) for models and seeds; nothing for views. -#}
{% macro refresh_planner_statistics() %}
    {{- return(adapter.dispatch('refresh_planner_statistics')()) }}
{% endmacro %}

{% macro default__refresh_planner_statistics() %}
{%- endmacro %}

{% macro postgres__refresh_planner_statistics() %}
    {%- set materialized = 'seed' if model.resource_type == 'seed' else config.get('materialized') %}
    {%- if materialized == 'incremental' %}
        {%- set unique_key = config.get('unique_key') %}
        {%- set keys = [unique_key] if unique_key is string else unique_key %}
        {%- set column_names = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
        {%- set lookups = [keys] + ([['built_at']] if 'built_at' in column_names else []) %}
        {%- for columns in lookups %}
    create index if not exists "{{ (this.identifier ~ '__' ~ (columns | join('__')))[:63] }}"
        on {{ this }} ({{ columns | join(', ') }});
        {%- endfor %}
    {%- endif %}
    {%- if materialized in ('table', 'incremental', 'seed') %}
    analyze {{ this }}
    {%- endif %}
{%- endmacro %}
