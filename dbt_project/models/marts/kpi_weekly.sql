-- Grain: one row per (ISO week, dimension, dimension value, KPI). dimension is
-- 'organisation' (dimension_value 'all') or 'department'. Every week between the
-- first and last observation is present for every department and KPI; a KPI with
-- nothing to measure has denominator 0 and a null value.
with observations as (
    select
        {{ iso_week_start('observed_at_local') }} as week_start,
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

weeks as (
    select cast(week_start as date) as week_start
    from generate_series(
        (select min(week_start) from observations),
        (select max(week_start) from observations),
        interval '7 day'
    ) as series(week_start)
),

slices as (
    select 'organisation' as dimension, 'all' as dimension_value
    union all
    select 'department', department from {{ ref('dim_departments') }}
),

definitions as (
    select * from {{ ref('kpi_definitions') }}
),

spine as (
    select weeks.week_start, slices.dimension, slices.dimension_value, definitions.*
    from weeks
    cross join slices
    cross join definitions
),

valued as (
    select
        spine.week_start,
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
        on spine.week_start = aggregated.week_start
        and spine.dimension = aggregated.dimension
        and spine.dimension_value = aggregated.dimension_value
        and spine.kpi_id = aggregated.kpi_id
)

select
    current_week.week_start,
    cast(current_week.week_start + interval '6 day' as date) as week_end,
    current_week.dimension,
    current_week.dimension_value,
    current_week.kpi_id,
    current_week.display_order,
    current_week.name_zh,
    current_week.name_en,
    current_week.unit,
    current_week.direction,
    current_week.numerator,
    current_week.denominator,
    current_week.value,
    current_week.target,
    {{ kpi_status('current_week.value', 'current_week.target', 'current_week.amber_band',
                  'current_week.direction') }} as status,
    previous_week.value as previous_value
from valued as current_week
left join valued as previous_week
    on previous_week.week_start = cast(current_week.week_start - interval '7 day' as date)
    and previous_week.dimension = current_week.dimension
    and previous_week.dimension_value = current_week.dimension_value
    and previous_week.kpi_id = current_week.kpi_id
