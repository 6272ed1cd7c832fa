-- Every fact's contribution to every flow KPI, one row per (fact, KPI), anchored at
-- the local moment that decides its period (attribution rules of the KPI catalogue)
-- and carrying every dimension the fact can say (null where it cannot).
-- numerator/denominator add up; measure feeds the percentile KPIs. Stocks (BACKLOG)
-- and weighted KPIs are derived in the KPI marts, per period. Deadline KPIs take a
-- fact only once its outcome is known at the data's as-of moment (outcome_known()).
{%- set ticket_dimensions = ['department', 'agent_id', 'channel', 'service_type',
                             'customer_type', 'service_level', 'region', 'priority'] %}
{%- set audit_dimensions = ['department', 'agent_id'] %}
{#- Each branch reads the facts through its own subquery, not a shared CTE (see
    fact_with_as_of). -#}
{%- set tickets = fact_with_as_of(ref('fct_tickets')) %}
{%- set answered_surveys -%}
    (select * from {{ ref('fct_survey_responses') }} where is_answered)
{%- endset %}
with as_of as (
    select * from {{ ref('int_changes_summarised') }}
),

observations as (
    select 'RESP_SLA' as kpi_id, created_at_local as observed_at_local,
           cast(case when is_responded_within_sla then 1 else 0 end as double precision) as numerator,
           cast(1 as double precision) as denominator, cast(null as double precision) as measure,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where {{ outcome_known('first_response_minutes is not null', 'response_due_at', 'data_as_of') }}

    union all
    select 'FRT', created_at_local, null, 1.0, first_response_minutes,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where first_response_minutes is not null

    -- FRT_P90 is another percentile of these (kpi_definitions.observations_of).

    -- Tickets due in the period (end of their due day) and whether they were resolved by then.
    union all
    select 'RES_RATE', cast(resolution_due_date as timestamp),
           case when is_resolved_by_due_date then 1.0 else 0.0 end, 1.0, null,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where resolution_due_date is not null
      and {{ outcome_known('is_resolved', "resolution_due_date + interval '1 day'", 'data_as_of_local') }}

    union all
    select 'FCR', resolved_at_local,
           case when is_first_contact_resolution then 1.0 else 0.0 end, 1.0, null,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where is_resolved

    union all
    select 'AHT', resolved_at_local, cast(handle_seconds as double precision), 1.0, null,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where is_resolved and handle_seconds is not null

    -- Deliveries count when delivered.
    union all
    select 'ON_TIME_DELIVERY', delivered_at_local,
           case when is_delivered_on_time then 1.0 else 0.0 end, 1.0, null,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where is_delivery and delivered_at_local is not null

    union all
    select 'CMP_RATE', created_at_local, 0.0, 1.0, null,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets

    union all
    select 'CMP_RATE', received_at_local, 1.0, 0.0, null, {{ dimension_columns() }}
    from {{ ref('fct_complaints') }} as complaints

    -- Complaint steps and their deadlines are decided in int_complaint_steps_evaluated,
    -- which the breach list reads too.
    union all
    select kpi_id, anchored_at_local, case when is_met then 1.0 else 0.0 end, 1.0, null,
           {{ dimension_columns() }}
    from {{ ref('int_complaint_steps_evaluated') }}
    where is_outcome_known

    union all
    select 'CSAT', answered_at_local,
           case when is_satisfied then 1.0 else 0.0 end, 1.0, null,
           {{ dimension_columns() }}
    from {{ answered_surveys }} as answered_surveys
    where satisfaction is not null

    union all
    select 'SAT_EXCELLENT', answered_at_local,
           case when is_excellent then 1.0 else 0.0 end, 1.0, null,
           {{ dimension_columns() }}
    from {{ answered_surveys }} as answered_surveys
    where satisfaction is not null

    union all
    select 'CSI', answered_at_local, satisfaction_index_points, 1.0, null,
           {{ dimension_columns() }}
    from {{ answered_surveys }} as answered_surveys
    where satisfaction is not null

    union all
    select 'NPS', answered_at_local,
           case when nps_group = 'promoter' then 1.0
                when nps_group = 'detractor' then -1.0
                else 0.0 end,
           1.0, null,
           {{ dimension_columns() }}
    from {{ answered_surveys }} as answered_surveys
    where nps_score is not null

    union all
    select case when audit_kind = 'process_audit' then 'TPS' else 'TDS' end,
           audited_at_local, total_score, 1.0, null,
           {{ dimension_columns(audit_dimensions) }}
    from {{ ref('stg_audits__audits') }} as audits
)

select * from observations
