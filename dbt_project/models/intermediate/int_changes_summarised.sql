{{ config(materialized='table') }}
-- One row: the newest change the warehouse knows of in tickets and complaints, the
-- "now" of the data. A deadline KPI counts a ticket or complaint only once its
-- outcome is known at this moment (done, or the deadline passed), and the KPI marts
-- end with its period: never the wall clock, so a rebuild of the same data gives the
-- same numbers.
with changes as (
    select max(updated_at) as updated_at from {{ ref('stg_crm__tickets') }}
    union all
    select max(updated_at) from {{ ref('stg_complaints__complaints') }}
)

-- The local time of the newest instant, not the newest local time: in the hour a zone
-- repeats when its clocks go back, a later instant can have an earlier wall time.
select
    max(updated_at) as data_as_of,
    {{ to_reporting_tz('max(updated_at)') }} as data_as_of_local
from changes
