-- Every fact's contribution to every KPI, one row per (fact, KPI), anchored at the
-- local moment that decides its period (attribution rules of the KPI catalogue).
-- numerator/denominator add up; measure feeds the percentile KPIs.
with tickets as (
    select * from {{ ref('fct_tickets') }}
),

complaints as (
    select * from {{ ref('fct_complaints') }}
),

answered_surveys as (
    select * from {{ ref('fct_survey_responses') }}
    where is_answered
)

select 'RESP_SLA' as kpi_id, created_at_local as observed_at_local, department,
       cast(case when is_responded_within_sla then 1 else 0 end as double precision) as numerator,
       cast(1 as double precision) as denominator, cast(null as double precision) as measure
from tickets

union all
select 'FRT', created_at_local, department, null, 1.0, first_response_minutes
from tickets
where first_response_minutes is not null

union all
select 'FRT_P90', created_at_local, department, null, 1.0, first_response_minutes
from tickets
where first_response_minutes is not null

union all
select 'FCR', resolved_at_local, department,
       case when is_first_contact_resolution then 1.0 else 0.0 end, 1.0, null
from tickets
where is_resolved

union all
select 'CMP_RATE', created_at_local, department, 0.0, 1.0, null
from tickets

union all
select 'CMP_RATE', received_at_local, department, 1.0, 0.0, null
from complaints

union all
select 'CSAT', answered_at_local, department,
       case when is_satisfied then 1.0 else 0.0 end, 1.0, null
from answered_surveys
where satisfaction is not null

union all
select 'CSI', answered_at_local, department, satisfaction_index_points, 1.0, null
from answered_surveys
where satisfaction is not null

union all
select 'NPS', answered_at_local, department,
       case when nps_group = 'promoter' then 1.0
            when nps_group = 'detractor' then -1.0
            else 0.0 end,
       1.0, null
from answered_surveys
where nps_score is not null
