-- Grain: one row per date of the calendar's years. The business calendar:
-- the country's public calendar with the organisation's overrides applied, and
-- working_day_index, the number of working days up to and including the date.
-- "Within N working days after day D" means: on or before the working day whose
-- index is index(D) + N; D itself never counts, and a clock started on a
-- non-working day starts counting with the next working day.
with public_days as (
    select * from {{ ref('int_public_calendar_days') }}
),

overrides as (
    select * from {{ ref('calendar_overrides') }}
),

business_days as (
    select
        public_days.calendar_date,
        coalesce(overrides.is_working_day, public_days.is_working_day) as is_working_day,
        case when overrides.calendar_date is not null then 'override'
             else public_days.day_kind end as day_kind,
        case when overrides.calendar_date is not null then overrides.note
             else public_days.holiday_name end as holiday_name
    from public_days
    left join overrides
        on public_days.calendar_date = overrides.calendar_date
)

select
    calendar_date,
    is_working_day,
    day_kind,
    holiday_name,
    sum(case when is_working_day then 1 else 0 end) over (
        order by calendar_date rows between unbounded preceding and current row
    ) as working_day_index,
    {{ period_start('week', 'calendar_date') }} as iso_week_start,
    {{ period_start('month', 'calendar_date') }} as month_start
from business_days
