-- Working-day KPIs need every fact's day in dim_dates: a day outside the configured
-- calendar years (settings calendar.first_year / last_year) would silently miss its
-- deadline. Returns the facts whose day the calendar does not cover.
select 'ticket' as fact, ticket_id as fact_id, cast(created_at_local as date) as fact_date
from {{ ref('fct_tickets') }}
where cast(created_at_local as date) not in (select calendar_date from {{ ref('dim_dates') }})
union all
select 'complaint', complaint_id, cast(received_at_local as date)
from {{ ref('fct_complaints') }}
where cast(received_at_local as date) not in (select calendar_date from {{ ref('dim_dates') }})
