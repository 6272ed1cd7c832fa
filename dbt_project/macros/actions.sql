{#- A table of the corrective-actions app (schema actions), or no rows of the same
    shape when it does not exist yet: servicepulse creates the tables before every build
    (servicepulse.actions.store), a plain `dbt build` on raw tables alone still builds.
    ``columns``: name -> SQL type, in order. -#}
{% macro actions_table_or_empty(table_name, columns) -%}
    {%- set relation = adapter.get_relation(
            database=target.database,
            schema=var('schema_prefix', '') ~ 'actions',
            identifier=table_name) if execute else none -%}
    {%- if relation is not none or not execute %}
    select {% for name in columns %}{{ name }}{{ ', ' if not loop.last }}{% endfor %}
    from {{ source('actions', table_name) }}
    {%- else %}
    select {% for name, sql_type in columns.items() %}cast(null as {{ sql_type }}) as {{ name }}{{ ', ' if not loop.last }}{% endfor %}
    where 1 = 0
    {%- endif %}
{%- endmacro %}
