-- Grain: one row per complaint (latest version), with its step durations, its
-- working-day deadlines (dim_dates) and the attributes of its customer and ticket.
with complaints as (
    select * from {{ ref('stg_complaints__complaints') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

tickets as (
    select * from {{ ref('stg_crm__tickets') }}
),

dates as (
    select * from {{ ref('dim_dates') }}
),

as_of as (
    select * from {{ ref('int_changes_summarised') }}
),

-- CMP_CLOSE_5WD counts from the day received, CALLBACK_2WD from the day resolved.
deadlines as (
    select
        complaints.*,
        close_deadline_day.calendar_date as close_deadline_date,
        callback_deadline_day.calendar_date as callback_deadline_date
    from complaints
    left join dates as received_day
        on received_day.calendar_date = cast(complaints.received_at_local as date)
    left join dates as close_deadline_day
        on close_deadline_day.is_working_day
        and close_deadline_day.working_day_index = received_day.working_day_index
            + {{ var('complaint_close_working_days') }}
    left join dates as resolved_day
        on resolved_day.calendar_date = cast(complaints.resolved_at_local as date)
    left join dates as callback_deadline_day
        on callback_deadline_day.is_working_day
        and callback_deadline_day.working_day_index = resolved_day.working_day_index
            + {{ var('callback_working_days') }}
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
    -- A step not taken yet counts as missed.
    coalesce({{ minutes_between('deadlines.received_at', 'deadlines.classified_at') }} <= 30, false)
        as is_classified_in_30_minutes,
    coalesce({{ minutes_between('deadlines.classified_at', 'deadlines.dispatched_at') }} <= 60, false)
        as is_dispatched_in_1_hour,
    coalesce({{ minutes_between('deadlines.received_at', 'deadlines.solution_at') }} <= 24 * 60, false)
        as has_solution_in_24_hours,
    -- Deadline KPIs count a complaint once the step's outcome is known: done, or its
    -- deadline passed before the data's as-of moment (int_changes_summarised). The
    -- dispatch clock starts at classification, or when classification was due.
    deadlines.classified_at is not null
        or deadlines.received_at + interval '30 minute' <= as_of.data_as_of
        as is_classify_outcome_known,
    deadlines.dispatched_at is not null
        or coalesce(deadlines.classified_at, deadlines.received_at + interval '30 minute')
            + interval '60 minute' <= as_of.data_as_of
        as is_dispatch_outcome_known,
    deadlines.solution_at is not null
        or deadlines.received_at + interval '24 hour' <= as_of.data_as_of
        as is_solution_outcome_known,
    deadlines.escalated_to is not null as is_escalated,
    deadlines.resolved_at is not null as is_resolved,
    deadlines.close_deadline_date,
    coalesce(cast(deadlines.resolved_at_local as date) <= deadlines.close_deadline_date, false)
        as is_closed_by_deadline,
    deadlines.resolved_at is not null
        or deadlines.close_deadline_date + interval '1 day' <= as_of.data_as_of_local
        as is_close_outcome_known,
    deadlines.callback_deadline_date,
    coalesce(cast(deadlines.callback_at_local as date) <= deadlines.callback_deadline_date, false)
        as is_called_back_by_deadline,
    deadlines.callback_at is not null
        or deadlines.callback_deadline_date + interval '1 day' <= as_of.data_as_of_local
        as is_callback_outcome_known
from deadlines
cross join as_of
left join customers
    on deadlines.customer_id = customers.customer_id
left join tickets
    on deadlines.ticket_id = tickets.ticket_id
