{#- One KPI table per period grain ('day'; 'week': ISO weeks, Monday first; 'month':
    calendar months), all in the reporting time zone.

    Grain of the result: one row per (period_start, dimension, dimension_value, kpi_id)
    for every period from the first observation's to the one holding the data's as-of
    moment (int_changes_summarised):
    - the organisation ('organisation', 'all') and every department, for every KPI;
    - every other dimension of kpi_dimensions(): each value it was observed with,
      for every KPI it can cut (observed with any value); no rows for KPIs a
      dimension cannot cut, such as response times by complaint category.
    A KPI with nothing to measure has denominator 0 and a null value; a stock (count)
    with nothing open is 0.

    The sums, percentiles and stocks come from int_kpi_observations_aggregated_to_periods
    (one aggregation of the observations for all three grains, incremental by
    period); this macro adds the spine of periods and slices, the values, the weighted
    KPIs, targets, statuses and the previous period's value, which cost in proportion
    to periods x slices, not to rows. -#}
{% macro kpi_period_table(grain) %}
{%- set step = period_step(grain) -%}
{%- set std = checked_weights('std_compliance_weights',
        ['response_in_sla', 'first_contact_resolution', 'excellent_satisfaction']) -%}
{%- set composite = checked_weights('composite_weights',
        ['satisfaction', 'efficiency', 'compliance']) -%}
with aggregated as (
    select
        period_start,
        kpi_id,
        dimension,
        dimension_value,
        numerator,
        denominator,
        median_measure,
        p90_measure
    from {{ ref('int_kpi_observations_aggregated_to_periods') }}
    where period_grain = '{{ grain }}'
),

definitions as (
    select * from {{ ref('kpi_definitions') }}
),

flow_periods as (
    select period_start
    from aggregated
    where dimension = 'organisation'
        and kpi_id in (select kpi_id from definitions where kind <> 'count')
),

periods as (
    select cast(series.period_start as date) as period_start
    from generate_series(
        (select cast(min(period_start) as timestamp) from flow_periods),
        -- The last period is the one the data's as-of moment falls in: deadlines
        -- may lie later, but nothing after the data's "now" is known yet.
        (select cast(least(max(period_start),
                          (select {{ period_start(grain, 'data_as_of_local') }}
                           from {{ ref('int_changes_summarised') }})) as timestamp)
         from flow_periods),
        {{ step }}
    ) as series(period_start)
),

slices as (
    select 'organisation' as dimension, 'all' as dimension_value, kpi_id
    from definitions
    union all
    select 'department', departments.department, definitions.kpi_id
    from {{ ref('dim_departments') }} as departments
    cross join definitions
    union all
    -- Every value of another dimension, for every KPI that dimension can cut.
    select dimension_values.dimension, dimension_values.dimension_value, dimension_kpis.kpi_id
    from (select distinct dimension, dimension_value from aggregated) as dimension_values
    inner join (select distinct dimension, kpi_id from aggregated) as dimension_kpis
        on dimension_values.dimension = dimension_kpis.dimension
    where dimension_values.dimension not in ('organisation', 'department')
),

spine as (
    select periods.period_start, slices.dimension, slices.dimension_value, definitions.*
    from periods
    cross join slices
    inner join definitions
        on slices.kpi_id = definitions.kpi_id
    where definitions.kind <> 'weighted'
),

measured as (
    select
        spine.period_start,
        spine.dimension,
        spine.dimension_value,
        spine.kpi_id,
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
),

-- Weighted KPIs of one slice and period, from that slice's component values; null
-- unless every component has a value (a weight never stands in for missing data).
-- Slices that cannot measure every component (complaint category) get none.
components as (
    select
        period_start,
        dimension,
        dimension_value,
        max(case when kpi_id = 'RESP_SLA' then value end) as response_in_sla,
        max(case when kpi_id = 'FCR' then value end) as first_contact_resolution,
        max(case when kpi_id = 'SAT_EXCELLENT' then value end) as excellent_satisfaction,
        max(case when kpi_id = 'CSI' then value end) as satisfaction_index,
        max(case when kpi_id = 'RES_RATE' then value end) as resolution_rate,
        count(case when kpi_id in ('RESP_SLA', 'FCR', 'SAT_EXCELLENT', 'CSI', 'RES_RATE')
                   then 1 end) as component_rows
    from measured
    group by 1, 2, 3
),

compliance as (
    select
        components.*,
        {{ std['response_in_sla'] }} * response_in_sla
            + {{ std['first_contact_resolution'] }} * first_contact_resolution
            + {{ std['excellent_satisfaction'] }} * excellent_satisfaction as std_compliance
    from components
    where component_rows = 5
),

weighted as (
    select period_start, dimension, dimension_value, 'STD_COMPLIANCE' as kpi_id,
           std_compliance as value
    from compliance
    union all
    -- Efficiency: answered in time and resolved by the due date, on 0-100.
    select period_start, dimension, dimension_value, 'COMPOSITE',
           {{ composite['satisfaction'] }} * satisfaction_index
           + {{ composite['efficiency'] }} * 100 * (response_in_sla + resolution_rate) / 2
           + {{ composite['compliance'] }} * 100 * std_compliance
    from compliance
),

valued as (
    select period_start, dimension, dimension_value, kpi_id, numerator, denominator, value
    from measured
    union all
    select period_start, dimension, dimension_value, kpi_id,
           cast(null as double precision),
           case when value is null then 0 else 1 end,
           value
    from weighted
)

select
    current_period.period_start,
    cast(current_period.period_start + {{ step }} - interval '1 day' as date) as period_end,
    current_period.dimension,
    current_period.dimension_value,
    current_period.kpi_id,
    definitions.display_order,
    definitions.name_zh,
    definitions.name_en,
    definitions.unit,
    definitions.direction,
    definitions.report_section,
    current_period.numerator,
    current_period.denominator,
    current_period.value,
    definitions.target,
    {{ kpi_status('current_period.value', 'definitions.target', 'definitions.amber_band',
                  'definitions.direction') }} as status,
    previous_period.value as previous_value
from valued as current_period
inner join definitions
    on current_period.kpi_id = definitions.kpi_id
left join valued as previous_period
    on previous_period.period_start = cast(current_period.period_start - {{ step }} as date)
    and previous_period.dimension = current_period.dimension
    and previous_period.dimension_value = current_period.dimension_value
    and previous_period.kpi_id = current_period.kpi_id
{% endmacro %}
