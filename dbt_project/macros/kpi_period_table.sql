{#- One KPI table per period grain ('week': ISO weeks, Monday first; 'month':
    calendar months), both in the reporting time zone. Grain of the result: one row
    per (period_start, dimension, dimension_value, kpi_id), for the organisation
    ('organisation', 'all') and each department, every period between the first
    and last observation; a KPI with nothing to measure has denominator 0 and a
    null value. -#}
{% macro kpi_period_table(grain) %}
{%- set step = "interval '7 day'" if grain == 'week' else "interval '1 month'" -%}
with observations as (
    select
        cast(date_trunc('{{ grain }}', observed_at_local) as date) as period_start,
        kpi_id,
        department,
        numerator,
        denominator,
        measure
    from {{ ref('int_kpi_observations_unioned') }}
),

aggregated as (
    {{ aggregate_kpi_observations('observations', 'organisation', "'all'") }}
    union all
    {{ aggregate_kpi_observations('observations', 'department', 'department') }}
),

periods as (
    select cast(period_start as date) as period_start
    from generate_series(
        (select min(period_start) from observations),
        (select max(period_start) from observations),
        {{ step }}
    ) as series(period_start)
),

slices as (
    select 'organisation' as dimension, 'all' as dimension_value
    union all
    select 'department', department from {{ ref('dim_departments') }}
),

spine as (
    select periods.period_start, slices.dimension, slices.dimension_value, definitions.*
    from periods
    cross join slices
    cross join {{ ref('kpi_definitions') }} as definitions
),

valued as (
    select
        spine.period_start,
        spine.dimension,
        spine.dimension_value,
        spine.kpi_id,
        spine.display_order,
        spine.name_zh,
        spine.name_en,
        spine.unit,
        spine.direction,
        spine.target,
        spine.amber_band,
        case when spine.kind in ('median', 'p90') then null
             else coalesce(aggregated.numerator, 0) end as numerator,
        coalesce(aggregated.denominator, 0) as denominator,
        {{ kpi_value('spine.kind', 'aggregated.numerator', 'aggregated.denominator',
                     'aggregated.median_measure', 'aggregated.p90_measure') }} as value
    from spine
    left join aggregated
        on spine.period_start = aggregated.period_start
        and spine.dimension = aggregated.dimension
        and spine.dimension_value = aggregated.dimension_value
        and spine.kpi_id = aggregated.kpi_id
)

select
    current_period.period_start,
    cast(current_period.period_start + {{ step }} - interval '1 day' as date) as period_end,
    current_period.dimension,
    current_period.dimension_value,
    current_period.kpi_id,
    current_period.display_order,
    current_period.name_zh,
    current_period.name_en,
    current_period.unit,
    current_period.direction,
    current_period.numerator,
    current_period.denominator,
    current_period.value,
    current_period.target,
    {{ kpi_status('current_period.value', 'current_period.target', 'current_period.amber_band',
                  'current_period.direction') }} as status,
    previous_period.value as previous_value
from valued as current_period
left join valued as previous_period
    on previous_period.period_start = cast(current_period.period_start - {{ step }} as date)
    and previous_period.dimension = current_period.dimension
    and previous_period.dimension_value = current_period.dimension_value
    and previous_period.kpi_id = current_period.kpi_id
{% endmacro %}
