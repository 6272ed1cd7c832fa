-- Every fact's contribution to every flow KPI: one row per fact and anchor moment
-- (the local moment that decides the period: attribution rules of the KPI catalogue),
-- carrying every dimension the fact can say (null where it cannot) and the KPIs
-- anchored there in slots: kpi_id_N names slot N's KPI; numerator_N and denominator_N
-- add up and are null where the fact is not (yet) an observation of that KPI. The
-- first KPI names the others (kpi_observation_sets()), so the aggregate groups by it
-- alone. measure feeds the percentile KPIs and belongs to kpi_id_1.
-- Several KPIs per row because the day sums hash every row into ten grouping sets:
-- one row per (fact, KPI) gave 77.5M rows for 10M tickets (11.3 s computed in memory);
-- as slots they are 36.2M rows (7.1 s).
-- Stocks (BACKLOG) and weighted KPIs are derived in the KPI marts, per period.
-- Deadline KPIs take a fact only once its outcome is known at the data's as-of moment
-- (outcome_known()).
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
    -- A ticket's creation: its response time (FRT, with the minutes as measure; FRT_P90
    -- is another percentile of these: kpi_definitions.observations_of), whether it was
    -- answered within the SLA once that is known (RESP_SLA), the ticket as CMP_RATE's
    -- denominator, and as one of the period's service requests (TICKETS).
    select
        created_at_local as observed_at_local,
        {{ observed_kpi_ids('FRT') }},
        cast(null as double precision) as numerator_1,
        cast(case when first_response_minutes is not null then 1 end as double precision)
            as denominator_1,
        cast(case
            when {{ outcome_known('first_response_minutes is not null', 'response_due_at', 'data_as_of') }}
                then case when is_responded_within_sla then 1 else 0 end
        end as double precision) as numerator_2,
        cast(case
            when {{ outcome_known('first_response_minutes is not null', 'response_due_at', 'data_as_of') }}
                then 1
        end as double precision) as denominator_2,
        cast(0 as double precision) as numerator_3,
        cast(1 as double precision) as denominator_3,
        cast(1 as double precision) as numerator_4,
        cast(1 as double precision) as denominator_4,
        {{ empty_kpi_observation_slots(5) }}
        cast(first_response_minutes as double precision) as measure,
        {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets

    -- Tickets due in the period (end of their due day) and whether they were resolved by then.
    union all
    select cast(resolution_due_date as timestamp), {{ observed_kpi_ids('RES_RATE') }},
           case when is_resolved_by_due_date then 1.0 else 0.0 end, 1.0,
           {{ empty_kpi_observation_slots(2) }}
           null,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where resolution_due_date is not null
      and {{ outcome_known('is_resolved', "resolution_due_date + interval '1 day'", 'data_as_of_local') }}

    -- A ticket's resolution: whether at first contact (FCR), and its handling time (AHT).
    union all
    select resolved_at_local, {{ observed_kpi_ids('FCR') }},
           case when is_first_contact_resolution then 1.0 else 0.0 end, 1.0,
           cast(handle_seconds as double precision),
           case when handle_seconds is not null then 1.0 end,
           {{ empty_kpi_observation_slots(3) }}
           null,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where is_resolved

    -- Deliveries count when delivered.
    union all
    select delivered_at_local, {{ observed_kpi_ids('ON_TIME_DELIVERY') }},
           case when is_delivered_on_time then 1.0 else 0.0 end, 1.0,
           {{ empty_kpi_observation_slots(2) }}
           null,
           {{ dimension_columns(ticket_dimensions) }}
    from {{ tickets }} as tickets
    where is_delivery and delivered_at_local is not null

    union all
    select received_at_local, {{ observed_kpi_ids('CMP_RATE') }}, 1.0, 0.0,
           {{ empty_kpi_observation_slots(2) }}
           null,
           {{ dimension_columns() }}
    from {{ ref('fct_complaints') }} as complaints

    -- Complaint steps and their deadlines are decided in int_complaint_steps_evaluated,
    -- which the breach list reads too.
    union all
    select anchored_at_local, {{ observed_kpi_ids('kpi_id', is_expression=true) }},
           case when is_met then 1.0 else 0.0 end, 1.0,
           {{ empty_kpi_observation_slots(2) }}
           null,
           {{ dimension_columns() }}
    from {{ ref('int_complaint_steps_evaluated') }}
    where is_outcome_known

    -- A survey sent: answered or not (SURVEY_RESPONSE), counted in the period it was
    -- sent, so a late answer raises the rate of the period that sent it.
    union all
    select sent_at_local, {{ observed_kpi_ids('SURVEY_RESPONSE') }},
           case when is_answered then 1.0 else 0.0 end, 1.0,
           {{ empty_kpi_observation_slots(2) }}
           null,
           {{ dimension_columns() }}
    from {{ ref('fct_survey_responses') }} as surveys
    where sent_at_local is not null

    -- A survey's answer: CSAT and CSI when it rates satisfaction, NPS when it gives a
    -- score.
    union all
    select answered_at_local, {{ observed_kpi_ids('CSAT') }},
           case when satisfaction is not null then case when is_satisfied then 1.0 else 0.0 end end,
           case when satisfaction is not null then 1.0 end,
           satisfaction_index_points,
           case when satisfaction is not null then 1.0 end,
           case when nps_group = 'promoter' then 1.0
                when nps_group = 'detractor' then -1.0
                when nps_score is not null then 0.0 end,
           case when nps_score is not null then 1.0 end,
           {{ empty_kpi_observation_slots(4) }}
           null,
           {{ dimension_columns() }}
    from {{ answered_surveys }} as answered_surveys
    where satisfaction is not null or nps_score is not null

    -- Its dimension scores: each dimension's mean over the answers that rate it (sum of
    -- scores / answers), and SAT_EXCELLENT over the answers that rate all three
    -- (is_excellent is null otherwise: fct_survey_responses).
    union all
    select answered_at_local, {{ observed_kpi_ids('SURVEY_ATTITUDE') }},
           cast(attitude_score as double precision),
           case when attitude_score is not null then 1.0 end,
           cast(speed_score as double precision),
           case when speed_score is not null then 1.0 end,
           cast(professionalism_score as double precision),
           case when professionalism_score is not null then 1.0 end,
           case when is_excellent then 1.0 when not is_excellent then 0.0 end,
           case when is_excellent is not null then 1.0 end,
           null,
           {{ dimension_columns() }}
    from {{ answered_surveys }} as answered_surveys
    where attitude_score is not null or speed_score is not null
        or professionalism_score is not null

    union all
    select audited_at_local,
           {{ observed_kpi_ids("case when audit_kind = 'process_audit' then 'TPS' else 'TDS' end",
                               is_expression=true) }},
           total_score, 1.0,
           {{ empty_kpi_observation_slots(2) }}
           null,
           {{ dimension_columns(audit_dimensions) }}
    from {{ ref('stg_audits__audits') }} as audits
)

select * from observations
