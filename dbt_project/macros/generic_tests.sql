{% test unique_combination_of_columns(model, combination_of_columns) %}
    select {{ combination_of_columns | join(', ') }}, count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{#- Values within [min_value, max_value]; max_value null: no upper bound. -#}
{% test value_between(model, column_name, min_value, max_value, where_sql='1 = 1') %}
    select *
    from {{ model }}
    where {{ column_name }} is not null
      and ({{ where_sql }})
      and ({{ column_name }} < {{ min_value }}
           {%- if max_value is not none %} or {{ column_name }} > {{ max_value }}{% endif %})
{% endtest %}

{#- The key of an incremental table (delete+insert on it) is unique: each key the latest
    build wrote (its rows carry that build's built_at) occurs once in the whole table.
    A delete+insert build first deletes every row of the keys it writes, so a table that
    was unique stays unique exactly when these rows are; a full build writes every row
    and so checks them all. The rows the build kept are not grouped again: at 10M rows
    that grouping cost 0.6-0.8 s per table in every nightly build. When the latest build
    wrote every row (a full build), the keys are grouped without first being looked up
    among the rows it wrote: that look-up doubled the test's time at 10M rows. -#}
{% test unique_incremental_key(model, column_name) %}
    {%- set every_row_written_by_latest_build, latest_build = false, none %}
    {%- if execute %}
        {%- set found = run_query("select min(built_at) = max(built_at), cast(max(built_at) as "
                                  ~ dbt.type_string() ~ ") from " ~ model).rows[0] %}
        {%- set every_row_written_by_latest_build, latest_build = found[0], found[1] %}
    {%- endif %}
    select {{ column_name }}, count(*) as occurrences
    from {{ model }}
    {%- if not every_row_written_by_latest_build %}
    where {{ column_name }} in (
        select {{ column_name }}
        from {{ model }}
        {#- The latest build as a constant: PostgreSQL then plans for the few thousand rows
            it wrote (by the built_at index, then each key by the key's index); given
            a subquery it planned for a guess and read the whole table (4 s at 10M). #}
        {%- if latest_build is not none %}
        where built_at = {{ typed_literal(latest_build, dbt.type_timestamp()) }}
        {%- else %}
        where {{ written_by_latest_build(model, 'built_at') }}
        {%- endif %}
    )
    {%- endif %}
    group by {{ column_name }}
    having count(*) > 1
{% endtest %}

{#- dbt's test filter (a test's `where` config), plus one filter by name for the tables a
    build rewrites in part: `where: "latest_build_rows(COLUMN)"` keeps the rows whose
    COLUMN equals its maximum, the rows the latest build wrote (built_at) or computed
    from the newest inputs (inputs_loaded_through). Such tables replace whole keys or
    periods, so the rows a build keeps were checked by the build that wrote them; a
    full build writes, and so checks, every row. `latest_build_rows(COLUMN) and COND`
    narrows those rows further. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- set match = modules.re.fullmatch('latest_build_rows\\((\\w+)\\)(\\s+and\\s+.*)?', where | trim) -%}
        {%- if match -%}
            {%- set where = written_by_latest_build(relation, match.group(1)) ~ (match.group(2) or '') -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The rows of `relation` whose `column` is at its maximum: the rows the latest build
    wrote (built_at) or computed from the newest inputs (inputs_loaded_through). -#}
{% macro written_by_latest_build(relation, column) -%}
    {{ column }} = (select max({{ column }}) from {{ relation }})
{%- endmacro %}
