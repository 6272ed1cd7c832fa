{{ config(materialized='incremental', unique_key='ticket_id', incremental_strategy='delete+insert',
          on_schema_change='append_new_columns',
          meta={'lookup_indexes': [['created_at_local'], ['resolved_at_local'], ['delivered_at_local'],
                                   ['left_backlog_at_local'], ['response_due_at'],
                                   ['cast(resolution_due_date as timestamp)']]}) }}
-- lookup_indexes (PostgreSQL): the moments KPI observations and backlog items are
-- anchored on; a nightly build reads the days it recomputes by them
-- (kpi_observed_in_recomputed_days), not every fact of the history.
-- Grain: one row per ticket (latest version), with its customer's attributes, its
-- working-day deadlines (dim_dates) and the measures every ticket KPI is built from.
-- A ticket takes attributes from its customer.
with tickets as (
    {% call staged_rows_to_rebuild(ref('stg_crm__tickets')) -%}
        customer_id in {{ keys_loaded_since_watermark(source('crm', 'crm_customers'), 'customer_id') }}
    {%- endcall %}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

measured as (
    select
        tickets.*,
        {{ minutes_between('tickets.created_at', 'tickets.first_response_at') }}
            as first_response_minutes,
        tickets.service_type = 'delivery' or tickets.promised_at is not null as is_delivery
    from tickets
),

-- Deadlines are the working day N working days after the day of creation.
deadlines as (
    select
        measured.*,
        resolution_deadline.calendar_date as resolution_due_date,
        coalesce(
            cast({{ to_reporting_tz('measured.promised_at') }} as date),
            promise_deadline.calendar_date
        ) as promised_date
    from measured
    {{ join_working_day_deadline('resolution', 'measured.created_at_local',
                                 resolution_working_days('measured.priority')) }}
    {{ join_working_day_deadline('promise', 'measured.created_at_local',
                                 var('delivery_promise_working_days')) }}
)

select
    deadlines.ticket_id,
    deadlines.customer_id,
    deadlines.department,
    deadlines.agent_id,
    deadlines.channel,
    deadlines.service_type,
    deadlines.priority,
    deadlines.status,
    customers.customer_type,
    customers.service_level,
    customers.region,
    deadlines.created_at,
    deadlines.created_at_local,
    {{ iso_week_start('deadlines.created_at_local') }} as created_week_start,
    deadlines.first_response_at_local,
    deadlines.resolved_at_local,
    deadlines.closed_at_local,
    deadlines.delivered_at_local,
    deadlines.first_response_minutes,
    -- Never answered counts as outside the SLA (catalogue: RESP_SLA).
    coalesce(deadlines.first_response_minutes <= {{ var('response_sla_minutes') }}, false)
        as is_responded_within_sla,
    deadlines.created_at + interval '1 minute' * {{ var('response_sla_minutes') }}
        as response_due_at,
    deadlines.resolved_at is not null as is_resolved,
    deadlines.resolved_at is not null and deadlines.contacts_to_resolve = 1
        as is_first_contact_resolution,
    deadlines.contacts_to_resolve,
    deadlines.handle_seconds,
    -- RES_RATE: due at the end of this local day; resolved by then or not. Whether an
    -- outcome is known yet depends on the data's as-of moment and is decided in
    -- int_kpi_observations_unioned, so this row changes only when the ticket does.
    deadlines.resolution_due_date,
    coalesce(cast(deadlines.resolved_at_local as date) <= deadlines.resolution_due_date, false)
        as is_resolved_by_due_date,
    -- ON_TIME_DELIVERY: the source's promise, else the end of the N-th working day
    -- after the order (catalogue CS-002); null until delivered.
    deadlines.is_delivery,
    case when deadlines.is_delivery then deadlines.promised_date end as promised_date,
    case
        when not deadlines.is_delivery or deadlines.delivered_at is null then null
        when deadlines.promised_at is not null
            then deadlines.delivered_at <= deadlines.promised_at
        else cast(deadlines.delivered_at_local as date) <= deadlines.promised_date
    end as is_delivered_on_time,
    -- When the item left the backlog: its resolution; a source that delivers a closed
    -- status without a closing time closes it at the version that says so (catalogue:
    -- BACKLOG; a 311 export, say).
    coalesce(deadlines.resolved_at_local,
             case when deadlines.status in ('resolved', 'closed')
                  then coalesce(deadlines.closed_at_local,
                                {{ to_reporting_tz('deadlines.updated_at') }}) end)
        as left_backlog_at_local,
    deadlines.loaded_at,
    {{ build_started_at() }} as built_at
from deadlines
left join customers
    on deadlines.customer_id = customers.customer_id
{{ in_time_order('deadlines.created_at_local') }}
