{{ config(materialized='incremental', unique_key='response_id', incremental_strategy='delete+insert',
          on_schema_change='fail',
          meta={'lookup_indexes': [['sent_at_local'], ['answered_at_local'], ['ticket_id'],
                                   ['complaint_id']]}) }}
-- lookup_indexes (PostgreSQL): the moments KPI observations are anchored on, by which
-- a nightly build reads the days it recomputes (kpi_observed_in_recomputed_days), not
-- every fact of the history; and the ticket and complaint a survey rates, by which the
-- period finder finds the surveys of the tickets and complaints that changed.
-- Grain: one row per survey response (latest version), sent or answered, attributed to
-- what it rates: the ticket's department, agent and channel, or the complaint's when it
-- rates a complaint; the customer's attributes from the responding customer. No free
-- text: comments may hold personal data and stay in staging (a report that is
-- configured to quote them reads staging and masks them: reports/feedback_data.py).
-- A response takes attributes from its ticket, its complaint (and through it the
-- complaint's ticket) and its customer: the facts rewrite a ticket or complaint whose
-- attributes changed, so a response whose fact row was rewritten rebuilds.
with responses as (
    {% call staged_rows_to_rebuild(ref('stg_surveys__survey_responses')) -%}
        ticket_id in (select ticket_id from {{ ref('fct_tickets') }}
                      where {{ written_after_last_build() }})
        or complaint_id in (select complaint_id from {{ ref('fct_complaints') }}
                            where {{ written_after_last_build() }})
        or customer_id in {{ keys_loaded_since_watermark(source('crm', 'crm_customers'), 'customer_id') }}
    {%- endcall %}
),

tickets as (
    {{ rows_needed(ref('fct_tickets'), 'ticket_id in (select ticket_id from responses)') }}
),

complaints as (
    {{ rows_needed(ref('fct_complaints'), 'complaint_id in (select complaint_id from responses)') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
)

select
    responses.response_id,
    responses.ticket_id,
    responses.complaint_id,
    responses.customer_id,
    coalesce(tickets.department, complaints.department) as department,
    coalesce(tickets.agent_id, complaints.agent_id) as agent_id,
    coalesce(tickets.channel, complaints.channel) as channel,
    coalesce(tickets.service_type, complaints.service_type) as service_type,
    customers.customer_type,
    customers.service_level,
    customers.region,
    complaints.complaint_category,
    coalesce(tickets.priority, complaints.priority) as priority,
    responses.sent_at,
    responses.sent_at_local,
    responses.answered_at_local,
    responses.answered_at is not null as is_answered,
    responses.satisfaction,
    responses.satisfaction >= 4 as is_satisfied,
    (responses.satisfaction - 1) / 4.0 * 100 as satisfaction_index_points,
    responses.nps_score,
    case
        when responses.nps_score >= 9 then 'promoter'
        when responses.nps_score <= 6 then 'detractor'
        when responses.nps_score is not null then 'passive'
    end as nps_group,
    responses.attitude_score,
    responses.speed_score,
    responses.professionalism_score,
    -- An answer that leaves out a dimension has no mean and is neither excellent nor
    -- not (null): a mean of the two given would make it excellent on less evidence,
    -- and counting it as not excellent would mark the service down for a question the
    -- customer skipped. STD_COMPLIANCE's third component counts only answers that rate
    -- all three (int_kpi_observations_unioned).
    cast(responses.attitude_score + responses.speed_score + responses.professionalism_score
         as double precision) / 3 as mean_dimension_score,
    -- Compared as whole-number sums against 3 x the threshold: no rounding of a third
    -- can tip an answer over it (14/3 = 4.67 is excellent, 13/3 = 4.33 is not).
    responses.attitude_score + responses.speed_score + responses.professionalism_score
        >= 3 * {{ var('excellent_mean_dimension_score') }} as is_excellent,
    responses.loaded_at,
    {{ build_started_at() }} as built_at
from responses
left join tickets
    on responses.ticket_id = tickets.ticket_id
left join complaints
    on responses.complaint_id = complaints.complaint_id
left join customers
    on responses.customer_id = customers.customer_id
{{ in_time_order('responses.answered_at_local') }}
