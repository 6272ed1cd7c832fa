{{ config(materialized='incremental', unique_key=['period_grain', 'period_start'],
          incremental_strategy='delete+insert', on_schema_change='fail',
          post_hook="{{ drop_materialised_rows('kpi_measures_to_rank') }}") }}
-- Grain: one row per (period_grain, period_start, kpi_id, dimension, dimension_value):
-- the median and 90th percentile of the measures of the KPIs that have one (FRT and the
-- KPIs that are other statistics of its observations, FRT_P90), per local day, ISO
-- week and calendar month, for the organisation and each value of every dimension of
-- kpi_dimensions(). The KPI marts join them to the sums and stocks of
-- int_kpi_observations_aggregated_to_periods.
--
-- A model of its own, not a part of that aggregate, so that the two run side by side
-- (dbt's threads): a percentile does not add up from days, and PostgreSQL sorts every
-- grain's measures once per dimension inside each group, on one core. At 1M tickets
-- this was 16 of the aggregate's 46 s there (docs/performance.md).
--
-- Incremental by period, exactly as the aggregate: the same period finder
-- (macros/kpi_period_finder.sql) over this table's own previous build, and whole
-- periods replaced. Every recomputed period has an organisation row per KPI with a
-- measure (null percentiles where nothing was measured), so a period whose measures
-- all moved away is still replaced.
{%- set horizon_working_days = kpi_horizon_working_days() %}
{%- set found = kpi_periods_to_recompute(horizon_working_days,
                                         this if is_incremental() else none) %}

{#- The measures of the recomputed days, read once per grain: PostgreSQL gets an
    analysed temporary table of them (materialised_rows), DuckDB the subquery, which it
    streams. Only the observation kinds with a measure are scanned: in the others the
    measure is a constant null, and both databases drop such branches of the union. -#}
{%- set measures -%}
    (
    select
        cast(observed_at_local as date) as observed_on,
        kpi_id_1,
        measure,
        {% for _, column in kpi_dimensions() %}{{ column }}{{ ", " if not loop.last }}{% endfor %}
    from {{ ref('int_kpi_observations_unioned') }}
    where measure is not null
        and {{ kpi_observed_in_recomputed_days(found) }}
    )
{%- endset %}
{%- set measures = materialised_rows('kpi_measures_to_rank', measures) %}

with {{ kpi_as_of_and_calendar(horizon_working_days) }},

{{ kpi_recomputed_periods_ctes(found.day_ranges) }},

percentiles as (
    {%- for grain, column in [('day', 'observed_on'), ('week', 'iso_week_start'), ('month', 'month_start')] %}
    select
        '{{ grain }}' as period_grain,
        {{ column }} as period_start,
        kpi_id_1 as kpi_id,
        {{ slice_columns() }},
        -- Both percentiles from one ordered set (the same SQL on DuckDB and
        -- PostgreSQL): two aggregates would each hold and sort every measure. The
        -- grains stay separate aggregates: one aggregate of all three read the measures
        -- once but held every grain's at the same time (10M full build: peak 5.3 GiB
        -- against 3.6 GiB, for 36-40 s against 41-45 s).
        percentile_cont(array[0.5, 0.9]) within group (order by measure) as measure_percentiles
    from (
        select measures.*, calendar.iso_week_start, calendar.month_start
        from {{ measures }} as measures
        inner join calendar
            on measures.observed_on = calendar.calendar_date
    ) as measures
    {%- if grain != 'day' %}
    where {{ column }} in (
        select period_start from recomputed_periods where period_grain = '{{ grain }}')
    {%- endif %}
    {{ slice_grouping_sets(column ~ ', kpi_id_1') }}
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

-- The KPIs measured by percentiles of their own observations (FRT); another
-- statistic of a KPI's observations (FRT_P90) takes that KPI's rows below.
measured_kpis as (
    select kpi_id
    from {{ ref('kpi_definitions') }}
    where kind in ('median', 'p90') and observations_of is null
),

-- Every recomputed period's organisation row of each measured KPI, measured or not:
-- the rows that mark the period as rebuilt.
periods_measured as (
    select
        recomputed_periods.period_grain,
        recomputed_periods.period_start,
        measured_kpis.kpi_id,
        'organisation' as dimension,
        'all' as dimension_value,
        percentiles.measure_percentiles[1] as median_measure,
        percentiles.measure_percentiles[2] as p90_measure
    from recomputed_periods
    cross join measured_kpis
    left join percentiles
        on recomputed_periods.period_grain = percentiles.period_grain
        and recomputed_periods.period_start = percentiles.period_start
        and measured_kpis.kpi_id = percentiles.kpi_id
        and percentiles.dimension = 'organisation'
    union all
    select period_grain, period_start, kpi_id, dimension, dimension_value,
           measure_percentiles[1], measure_percentiles[2]
    from percentiles
    where dimension <> 'organisation' or kpi_id not in (select kpi_id from measured_kpis)
),

{{ kpi_period_rows('periods_measured', ['median_measure', 'p90_measure']) }}
