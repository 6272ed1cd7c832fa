{#- After a table is built on PostgreSQL: its planner statistics, and the indexes a
    nightly build looks its rows up by.
    - Statistics: a table dbt has just created has none until autovacuum gets to it
      (never, where autovacuum is off), and the planner then guesses a few hundred
      rows. With guessed sizes the daily KPI table joined its 270,000 values by nested
      loops: 194 s at 1M tickets, 2.7 s once the aggregate under it had statistics.
    - Indexes, on an incremental model: its unique key (the delete of delete+insert
      finds the rows it replaces), built_at (the next model's
      written_after_last_build), loaded_at (its own load watermark, the newest
      loaded_at: without the index, a scan of every row of staging each night, 1.3 s
      for the tickets at 10M) and inputs_loaded_through (the KPI aggregate and
      tables: a nightly build's tests check the rows it wrote, latest_build_rows, and
      the KPI tables find the periods the aggregate rebuilt, each from its maximum;
      without it every test read the whole table, and the night cost grew with the
      history); and any a model names in meta.lookup_indexes (the KPI aggregate's
      slices, which the KPI tables walk: kpi_observed_slices; the facts' anchor
      moments, by which the aggregates read the days they recompute). Created once after a
      full build, or after the first build that asks for one; kept up by PostgreSQL as
      rows arrive.
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
        {%- set lookups = [keys] + ([['built_at']] if 'built_at' in column_names else [])
                          + ([['loaded_at']] if 'loaded_at' in column_names else [])
                          + ([['inputs_loaded_through']] if 'inputs_loaded_through' in column_names
                             else [])
                          + (config.get('meta') or {}).get('lookup_indexes', []) %}
        {%- for columns in lookups %}
            {%- set name = lookup_index_name(this, columns) %}
            {%- set cut_name = (this.identifier ~ '__' ~ (columns | join('__')))[:63] %}
            {%- if cut_name != name %}
    {#- Earlier versions named every index by its name cut to 63 characters: a second
        index of the same lookup would only slow every write. #}
    drop index if exists "{{ this.schema }}"."{{ cut_name }}";
            {%- endif %}
    create index if not exists "{{ name }}"
        on {{ this }} (
            {%- for column in columns %}{{ '(' ~ column ~ ')' if '(' in column else column }}
            {{- ', ' if not loop.last }}{% endfor %});
        {%- endfor %}
    {%- endif %}
    {%- if materialized in ('table', 'incremental', 'seed') %}
    analyze {{ this }}
    {%- endif %}
{%- endmacro %}

{#- The name of the index of `relation` on `columns` (a list of columns or expressions,
    such as "cast(due_date as timestamp)"): the table's name and the columns', anything
    but letters, digits and underscores made an underscore, so that another list of
    columns is another index. PostgreSQL cuts names at
    63 characters; a longer name keeps 54 and adds 8 of the full name's md5, so two
    lookups cut to one prefix, or a lookup whose columns changed, still get indexes of
    their own (creation is `if not exists`: a name clash would leave one unmade). -#}
{% macro lookup_index_name(relation, columns) %}
    {%- set name = modules.re.sub('[^0-9a-z_]+', '_',
                                  (relation.identifier ~ '__' ~ (columns | join('__'))) | lower) %}
    {%- if name | length <= 63 %}
        {{- return(name) }}
    {%- endif %}
    {{- return(name[:54] ~ '_' ~ local_md5(name)[:8]) }}
{% endmacro %}

{#- Whether PostgreSQL has the index lookup_index_name(relation, columns) names: the
    queries that follow an index use it only where it is there (kpi_observed_slices). -#}
{% macro relation_has_index(relation, columns) %}
    {%- set found = run_query("select 1 from pg_indexes where schemaname = '" ~ relation.schema
                              ~ "' and tablename = '" ~ relation.identifier
                              ~ "' and indexname = '" ~ lookup_index_name(relation, columns) ~ "'") %}
    {{- return(found.rows | length > 0) }}
{% endmacro %}

{#- The rows a model reads more than once, given as a parenthesised subquery, as the
    relation its selects read them from.
    - PostgreSQL: a temporary table of them, analysed, created before the model's own
      statement on its connection. The subquery is then computed once, not once per
      read; and the planner knows the rows. Over the view itself it guessed the KPI
      aggregate's groups at 4M (real: 122k) and sorted all 4.7M observations of the
      1M-ticket set eight times over for the sums' grouping sets (58 of that model's
      88 s); with statistics it hashes every grouping set in one pass.
      drop_materialised_rows drops the table after the model (a post-hook).
    - DuckDB: the subquery itself; it streams each read and needs no statistics.
    ``name`` names the temporary table (one per model that uses this). -#}
{% macro materialised_rows(name, subquery) %}
    {{- return(adapter.dispatch('materialised_rows')(name, subquery)) }}
{% endmacro %}

{% macro default__materialised_rows(name, subquery) %}
    {{- return(subquery) }}
{% endmacro %}

{% macro postgres__materialised_rows(name, subquery) %}
    {%- if execute %}
        {%- call statement('materialise_' ~ name) %}
    drop table if exists {{ name }};
    create temporary table {{ name }} as select * from {{ subquery }} as rows_;
    analyze {{ name }}
        {%- endcall %}
    {%- endif %}
    {{- return(name) }}
{% endmacro %}

{% macro drop_materialised_rows(name) %}
    {{- return(adapter.dispatch('drop_materialised_rows')(name)) }}
{% endmacro %}

{% macro default__drop_materialised_rows(name) %}
{%- endmacro %}

{% macro postgres__drop_materialised_rows(name) %}
    drop table if exists {{ name }}
{%- endmacro %}
