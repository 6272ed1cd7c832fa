{{ config(materialized='view') }}
-- Grain: one row per (period grain, period, slice): the rectification closure KPIs of
-- the catalogue. Of the actions due in the period (their deadline in force, after any
-- extension): closure rate = closed (done or verified) by the deadline / due;
-- verified share = verified / closed. A reopened action is not closed. Slices: the organisation (all) and each owning department. A view over
-- fct_corrective_actions, current whenever a report reads it.
with actions as (
    select * from {{ ref('fct_corrective_actions') }}
),

dates as (
    select calendar_date, iso_week_start, month_start from {{ ref('dim_dates') }}
),

actions_in_periods as (
    {% for grain, start_column in [('week', 'iso_week_start'), ('month', 'month_start')] %}
    select
        '{{ grain }}' as period_grain,
        due_dates.{{ start_column }} as period_start,
        actions.*
    from actions
    inner join dates as due_dates
        on actions.due_on = due_dates.calendar_date
    {{ 'union all' if not loop.last }}
    {% endfor %}
),

sliced as (
    select 'organisation' as dimension, 'all' as dimension_value, actions_in_periods.*
    from actions_in_periods
    union all
    select 'department' as dimension, department as dimension_value, actions_in_periods.*
    from actions_in_periods
),

counted as (
    select
        period_grain,
        period_start,
        dimension,
        dimension_value,
        cast(count(*) as {{ dbt.type_int() }}) as actions_due,
        cast(sum(case when is_done_by_due then 1 else 0 end) as {{ dbt.type_int() }})
            as actions_done_by_due,
        cast(sum(case when status in ('done', 'verified') then 1 else 0 end)
            as {{ dbt.type_int() }}) as actions_done,
        cast(sum(case when status = 'verified' then 1 else 0 end) as {{ dbt.type_int() }})
            as actions_verified,
        cast(sum(case when status in ('open', 'reopened') then 1 else 0 end)
            as {{ dbt.type_int() }}) as actions_still_open
    from sliced
    group by period_grain, period_start, dimension, dimension_value
)

select
    period_grain,
    period_start,
    dimension,
    dimension_value,
    actions_due,
    actions_done_by_due,
    actions_done,
    actions_verified,
    actions_still_open,
    cast(actions_done_by_due as {{ dbt.type_float() }}) / actions_due as closure_rate,
    case when actions_done > 0
        then cast(actions_verified as {{ dbt.type_float() }}) / actions_done end as verified_share
from counted
