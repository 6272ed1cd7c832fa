{#- Incremental facts. A build after the first rebuilds only the keys whose staging rows
    were written after the fact's last build (written_after_last_build), or whose
    attributes changed (the rows they take attributes from were rewritten or loaded
    since), and replaces those rows (delete+insert on the key). A late or corrected
    row is a new version with a new load time: staging rewrites it, so the fact picks
    it up, whichever build of staging wrote it. A full refresh
    (`servicepulse build --full-refresh`) gives the same table.
    Changing the business calendar or a deadline var changes old rows too: then run
    a full refresh. -#}
{#- The watermark is the newest `column` of this model's rows (loaded_at for facts and
    staging; the KPI aggregate keeps the newest load its build had seen). -#}
{% macro incremental_watermark(column='loaded_at', relation=none) -%}
    (select coalesce(max({{ column }}), cast('1900-01-01 00:00:00+00' as {{ dbt.type_timestamp() }}))
     from {{ relation if relation is not none else this }})
{%- endmacro %}

{#- The rows of an incremental staging table or fact that a build wrote after this
    model's last build. Both sides are dbt's start time of their build, so a staging
    build run on its own (`--select staging`) is picked up by the next build of the
    facts. Filtering on built_at rather than on keys lets DuckDB skip the row groups
    of older builds: a nightly batch is appended at the end of the table. Builds must not
    overlap (the DAGs' one-slot warehouse pool): a staging build that started before a
    fact's build and wrote after it would carry an older built_at and be missed. -#}
{% macro written_after_last_build() -%}
    built_at > {{ incremental_watermark('built_at') }}
{%- endmacro %}

{#- The rows of the table `relation` for which `condition` holds. On DuckDB the
    condition is evaluated on its own columns first and the matching rows are then
    fetched by row id: a semi-join reading every column of a 10M-row table to keep a
    few thousand rows cost 0.3-1 s a model in a nightly build at 10M tickets; by row
    id it reads the condition's columns only. -#}
{% macro rows_matching(relation, condition) -%}
    {{ return(adapter.dispatch('rows_matching')(relation, condition)) }}
{%- endmacro %}

{% macro default__rows_matching(relation, condition) -%}
    select * from {{ relation }} where {{ condition }}
{%- endmacro %}

{% macro duckdb__rows_matching(relation, condition) -%}
    select * from {{ relation }}
    where rowid in (select rowid from {{ relation }} where {{ condition }})
{%- endmacro %}

{#- The rows of the staging table `relation` an incremental fact rebuilds: those
    written after its last build, and those whose attributes changed (the condition in
    the call block, evaluated only on the other rows, so no row comes twice). A full
    build takes all. A call block, not an argument: its SQL is rendered only in an
    incremental build, so the sources it names are no inputs of the unit tests. -#}
{% macro staged_rows_to_rebuild(relation) -%}
    select * from {{ relation }}
    {%- if is_incremental() %}
    where {{ written_after_last_build() }}
    union all
    {{ rows_matching(relation, 'not ' ~ written_after_last_build() ~ ' and (' ~ caller() ~ ')') }}
    {%- endif %}
{%- endmacro %}

{#- The rows of `relation` a model joins to: all in a full build, in an incremental one
    only those for which `condition` holds (the keys of the rows being rebuilt). -#}
{% macro rows_needed(relation, condition) -%}
    {%- if is_incremental() %}
    {{ rows_matching(relation, condition) }}
    {%- else %}
    select * from {{ relation }}
    {%- endif %}
{%- endmacro %}

{#- Keys of `relation` (column `key`) that have a version loaded after the watermark
    (of `watermark_relation`, by default the model being built). ``watermark``: the
    watermark itself as text, when the caller has read it (a constant PostgreSQL plans
    by its statistics, where a subquery gets a guess of a third of the table). -#}
{% macro keys_loaded_since_watermark(relation, key, watermark_column='loaded_at',
                                     watermark_relation=none, watermark=none) -%}
    (select {{ key }} from {{ relation }}
     where _loaded_at > {{ incremental_watermark(watermark_column, watermark_relation)
                           if watermark is none
                           else typed_literal(watermark, 'timestamp with time zone') }})
{%- endmacro %}

{#- delete+insert on DuckDB. For a key of several columns dbt-duckdb deletes with
    `delete ... using <new rows> where <keys equal>`, which pairs every old row of a
    period with every new row of it (the KPI aggregate replaces periods of thousands
    of rows: 3.6 s for one night at 10M tickets). dbt's default statement, which
    PostgreSQL uses too, deletes the rows whose key is in the distinct new keys: the
    same rows, in 13 ms. -#}
{% macro duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
    {{ default__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) }}
{%- endmacro %}

{#- When this dbt invocation started (UTC, no zone): each incremental staging and fact
    row carries the start of the build that last wrote it (built_at), so a key test can
    check the rows the latest build wrote (unique_incremental_key). -#}
{% macro build_started_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The rows of a large fact in the order of the moment its KPIs are anchored on (a
    full build writes every row in that order; a nightly batch is sorted too, and
    appended). DuckDB keeps each row group's min and max, so a nightly build that
    reads a few periods of a long history skips the row groups outside them (the KPI
    aggregate in a nightly build at 10M tickets: 5.0 s -> 3.6 s). PostgreSQL reads
    those periods by the facts' indexes on their anchor moments (lookup_indexes) only
    when the rows of a period lie together: in load order its planner judged that the
    five months a night recomputed at 10M tickets touched every page, and scanned the
    whole table once per anchor (reading the observations: 10.0 s; in time order, by
    index, 5.6 s). A nightly batch is mostly recent, so the order holds roughly. A
    warehouse built before this gets the order at its next full refresh. -#}
{% macro in_time_order(column) -%}
    order by {{ column }}
{%- endmacro %}

{#- Every raw table and the source system (dbt source) whose deliveries land in it: for
    the models that loop over every raw table (the calendar's years, the KPI aggregate's
    load watermark and period finder). -#}
{% macro raw_table_systems() -%}
    {{- return({'crm_customers': 'crm', 'crm_tickets': 'crm', 'complaints': 'complaints',
                'survey_responses': 'surveys', 'audits': 'audits'}) }}
{%- endmacro %}

{#- A raw table as a dbt source. -#}
{% macro raw_table(table) -%}
    {{- return(source(raw_table_systems()[table], table)) }}
{%- endmacro %}
