{#- The complaint priority matrix (catalogue: "complaint priority matrix (impact ×
    frequency, seed method: fix high-impact, high-frequency first)") per period of a
    grain ('week' or 'month'), for the organisation and each department.

    Grain: one row per (period_start, dimension, dimension_value, complaint_category)
    that received complaints in the period.
    - frequency: complaints of the category / all complaints of the slice and period;
      high when at or above the average category's share (1 / categories seen).
    - impact: share of the category's complaints that are urgent or were escalated;
      high when at or above that share over all the slice's complaints.
    - priority_rank: 1 fix first (high impact, high frequency), 2 high impact,
      3 high frequency, 4 monitor. -#}
{% macro complaint_priority_table(grain) %}
with complaints as (
    select
        {{ period_start(grain, 'received_at_local') }} as period_start,
        department,
        complaint_category,
        case when severity = 'urgent' or escalated_to is not null then 1 else 0 end
            as is_high_impact
    from {{ ref('fct_complaints') }}
),

by_slice as (
    select period_start, 'organisation' as dimension, 'all' as dimension_value,
           complaint_category, is_high_impact
    from complaints
    union all
    select period_start, 'department', department, complaint_category, is_high_impact
    from complaints
),

categories as (
    select
        period_start,
        dimension,
        dimension_value,
        complaint_category,
        count(*) as complaints,
        sum(is_high_impact) as high_impact_complaints
    from by_slice
    group by 1, 2, 3, 4
),

slices as (
    select
        period_start,
        dimension,
        dimension_value,
        sum(complaints) as slice_complaints,
        sum(high_impact_complaints) as slice_high_impact_complaints,
        count(*) as categories_seen
    from categories
    group by 1, 2, 3
),

scored as (
    select
        categories.*,
        cast(categories.complaints as double precision) / slices.slice_complaints
            as frequency_share,
        cast(categories.high_impact_complaints as double precision) / categories.complaints
            as impact_share,
        cast(1.0 as double precision) / slices.categories_seen as frequency_threshold,
        cast(slices.slice_high_impact_complaints as double precision) / slices.slice_complaints
            as impact_threshold
    from categories
    inner join slices
        on categories.period_start = slices.period_start
        and categories.dimension = slices.dimension
        and categories.dimension_value = slices.dimension_value
),

quadrants as (
    select
        scored.*,
        frequency_share >= frequency_threshold as is_high_frequency,
        impact_share >= impact_threshold as is_high_impact
    from scored
)

select
    period_start,
    cast(period_start + {{ period_step(grain) }} - interval '1 day' as date) as period_end,
    dimension,
    dimension_value,
    complaint_category,
    complaints,
    high_impact_complaints,
    frequency_share,
    impact_share,
    frequency_threshold,
    impact_threshold,
    is_high_frequency,
    is_high_impact,
    case
        when is_high_impact and is_high_frequency then 1
        when is_high_impact then 2
        when is_high_frequency then 3
        else 4
    end as priority_rank
from quadrants
{% endmacro %}
