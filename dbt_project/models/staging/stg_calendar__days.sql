-- One row per date of the configured years: the public calendar of the configured
-- country (holidays package), as written by servicepulse before each build.
select
    cast(calendar_date as date) as calendar_date,
    is_working_day,
    day_kind,
    holiday_name,
    country
from {{ source('calendar', 'public_calendar') }}
