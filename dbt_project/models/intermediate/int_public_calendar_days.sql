-- Grain: one row per date of the calendar's years (stg_calendar__data_years). The
-- country's public calendar: the seed public_holidays holds only the days that break
-- the weekly pattern (public holidays, worked weekend days), written from the holidays
-- package by `servicepulse calendar`; every other day is a weekend day or a workday by
-- the country's weekend (var calendar_weekend_isodows, ISO day numbers).
{%- set weekend = var('calendar_weekend_isodows', [6, 7]) | join(', ') %}

with years as (
    select first_year, last_year from {{ ref('stg_calendar__data_years') }}
),

days as (
    select cast(spine.day as date) as calendar_date
    from years
    cross join lateral generate_series(
        cast(make_date(years.first_year, 1, 1) as timestamp),
        cast(make_date(years.last_year, 12, 31) as timestamp),
        interval '1 day'
    ) as spine (day)
),

exceptions as (
    select calendar_date, day_kind, holiday_name, is_working_day
    from {{ ref('public_holidays') }}
    where country = '{{ var("calendar_country", "CN") }}'
      and coalesce(subdivision, '') = '{{ var("calendar_subdivision", "") }}'
)

select
    days.calendar_date,
    coalesce(
        exceptions.is_working_day,
        extract(isodow from days.calendar_date) not in ({{ weekend }})
    ) as is_working_day,
    coalesce(
        exceptions.day_kind,
        case when extract(isodow from days.calendar_date) in ({{ weekend }}) then 'weekend'
             else 'workday' end
    ) as day_kind,
    exceptions.holiday_name
from days
left join exceptions
    on days.calendar_date = exceptions.calendar_date
