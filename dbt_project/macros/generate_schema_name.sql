{#- Schemas are named raw, staging, intermediate, marts, reference (plus an optional
    prefix), the same on DuckDB and PostgreSQL, so SQL outside dbt can rely on them. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ var('schema_prefix', '') }}{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
