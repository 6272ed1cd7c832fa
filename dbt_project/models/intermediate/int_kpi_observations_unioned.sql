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
),

audits as (
    select * from {{ ref('stg_audits__audits') }}
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

union all
select 'AHT', resolved_at_local, department, cast(handle_seconds as double precision), 1.0, null
from tickets
where is_resolved and handle_seconds is not null

union all
select 'CMP_SOLUTION_24H', received_at_local, department,
       case when has_solution_in_24_hours then 1.0 else 0.0 end, 1.0, null
from complaints

union all
select 'STEP_CLASSIFY_30M', received_at_local, department,
       case when is_classified_in_30_minutes then 1.0 else 0.0 end, 1.0, null
from complaints

union all
select 'STEP_DISPATCH_1H', received_at_local, department,
       case when is_dispatched_in_1_hour then 1.0 else 0.0 end, 1.0, null
from complaints

union all
select 'STEP_ESCALATION', received_at_local, department,
       case when is_escalated then 1.0 else 0.0 end, 1.0, null
from complaints
where severity = 'urgent'

union all
select case when audit_kind = 'process_audit' then 'TPS' else 'TDS' end,
       audited_at_local, department, total_score, 1.0, null
from audits
