{{ config(materialized='incremental', unique_key='complaint_id', incremental_strategy='delete+insert',
          on_schema_change='append_new_columns',
          meta={'lookup_indexes': [['received_at_local'], ['resolved_at_local'],
                                   ['left_backlog_at_local']]}) }}
-- lookup_indexes (PostgreSQL): the moments KPI observations and backlog items are
-- anchored on; a nightly build reads the days it recomputes by them
-- (kpi_observed_in_recomputed_days), not every fact of the history.
-- Grain: one row per complaint (latest version), with its step durations, its
-- working-day deadlines (dim_dates) and the attributes of its customer and ticket.
-- A complaint takes attributes from its ticket and its customer.
with complaints as (
    {% call staged_rows_to_rebuild(ref('stg_complaints__complaints')) -%}
        ticket_id in (select ticket_id from {{ ref('stg_crm__tickets') }}
                      where {{ written_after_last_build() }})
        or customer_id in {{ keys_loaded_since_watermark(source('crm', 'crm_customers'), 'customer_id') }}
    {%- endcall %}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

tickets as (
    {{ rows_needed(ref('stg_crm__tickets'), 'ticket_id in (select ticket_id from complaints)') }}
),

-- CMP_CLOSE_5WD counts from the day received, CALLBACK_2WD from the day resolved.
deadlines as (
    select
        complaints.*,
        close_deadline.calendar_date as close_deadline_date,
        callback_deadline.calendar_date as callback_deadline_date
    from complaints
    {{ join_working_day_deadline('close', 'complaints.received_at_local',
                                 var('complaint_close_working_days')) }}
    {{ join_working_day_deadline('callback', 'complaints.resolved_at_local',
                                 var('callback_working_days')) }}
)

select
    deadlines.complaint_id,
    deadlines.ticket_id,
    deadlines.customer_id,
    deadlines.category as complaint_category,
    deadlines.severity,
    -- Severity is the complaint's priority: one priority dimension for all facts.
    deadlines.severity as priority,
    deadlines.department,
    tickets.agent_id,
    tickets.channel,
    tickets.service_type,
    customers.customer_type,
    customers.service_level,
    customers.region,
    deadlines.status,
    deadlines.escalated_to,
    deadlines.received_at,
    deadlines.received_at_local,
    {{ iso_week_start('deadlines.received_at_local') }} as received_week_start,
    deadlines.resolved_at_local,
    deadlines.callback_at_local,
    {{ minutes_between('deadlines.received_at', 'deadlines.classified_at') }} as minutes_to_classify,
    {{ minutes_between('deadlines.classified_at', 'deadlines.dispatched_at') }} as minutes_to_dispatch,
    {{ minutes_between('deadlines.received_at', 'deadlines.solution_at') }} as minutes_to_solution,
    -- Step deadlines of the complaint process (catalogue: STEP_SLA, CMP_SOLUTION_24H).
    -- A step not taken yet counts as missed. Where the system records no time for a
    -- step but its own verdict (classified_in_time ...), the verdict decides.
    coalesce({{ minutes_between('deadlines.received_at', 'deadlines.classified_at') }} <= 30,
             deadlines.classified_in_time, false)
        as is_classified_in_30_minutes,
    -- Dispatch is due an hour after classification, or after classification was due
    -- (dispatch_due_at below): a source without classification times can be measured.
    coalesce(deadlines.dispatched_at <= coalesce(deadlines.classified_at,
                                                 deadlines.received_at + interval '30 minute')
                                        + interval '60 minute',
             deadlines.dispatched_in_time, false)
        as is_dispatched_in_1_hour,
    coalesce({{ minutes_between('deadlines.received_at', 'deadlines.solution_at') }} <= 24 * 60,
             deadlines.solution_in_time, false)
        as has_solution_in_24_hours,
    deadlines.classified_in_time,
    deadlines.dispatched_in_time,
    deadlines.solution_in_time,
    -- Step deadlines as instants; whether a missing step is already missed depends on
    -- the data's as-of moment and is decided in int_kpi_observations_unioned. The
    -- dispatch clock starts at classification, or when classification was due.
    deadlines.classified_at,
    deadlines.dispatched_at,
    deadlines.solution_at,
    deadlines.callback_at,
    deadlines.received_at + interval '30 minute' as classify_due_at,
    coalesce(deadlines.classified_at, deadlines.received_at + interval '30 minute')
        + interval '60 minute' as dispatch_due_at,
    deadlines.received_at + interval '24 hour' as solution_due_at,
    deadlines.escalated_to is not null as is_escalated,
    deadlines.resolved_at is not null as is_resolved,
    deadlines.close_deadline_date,
    coalesce(cast(deadlines.resolved_at_local as date) <= deadlines.close_deadline_date, false)
        as is_closed_by_deadline,
    deadlines.callback_deadline_date,
    coalesce(cast(deadlines.callback_at_local as date) <= deadlines.callback_deadline_date, false)
        as is_called_back_by_deadline,
    -- When the item left the backlog: its resolution; a source that delivers a closed
    -- status without a closing time closes it at the version that says so (catalogue:
    -- BACKLOG; a 311 export, say).
    coalesce(deadlines.resolved_at_local,
             case when deadlines.status in ('resolved', 'closed')
                  then {{ to_reporting_tz('deadlines.updated_at') }} end)
        as left_backlog_at_local,
    deadlines.loaded_at,
    {{ build_started_at() }} as built_at
from deadlines
left join customers
    on deadlines.customer_id = customers.customer_id
left join tickets
    on deadlines.ticket_id = tickets.ticket_id
{{ in_time_order('deadlines.received_at_local') }}
