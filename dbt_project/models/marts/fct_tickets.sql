-- Grain: one row per ticket (latest version), with its customer's attributes and the
-- measures every ticket KPI is built from.
with tickets as (
    select * from {{ ref('stg_crm__tickets') }}
),

customers as (
    select * from {{ ref('stg_crm__customers') }}
),

measured as (
    select
        tickets.*,
        {{ minutes_between('tickets.created_at', 'tickets.first_response_at') }}
            as first_response_minutes
    from tickets
)

select
    measured.ticket_id,
    measured.customer_id,
    measured.department,
    measured.agent_id,
    measured.channel,
    measured.service_type,
    measured.priority,
    measured.status,
    customers.customer_type,
    customers.service_level,
    customers.region,
    measured.created_at,
    measured.created_at_local,
    {{ iso_week_start('measured.created_at_local') }} as created_week_start,
    measured.first_response_at_local,
    measured.resolved_at_local,
    measured.closed_at_local,
    measured.first_response_minutes,
    -- Never answered counts as outside the SLA (catalogue: RESP_SLA).
    coalesce(measured.first_response_minutes <= {{ var('response_sla_minutes') }}, false)
        as is_responded_within_sla,
    measured.resolved_at is not null as is_resolved,
    measured.resolved_at is not null and measured.contacts_to_resolve = 1
        as is_first_contact_resolution,
    measured.contacts_to_resolve,
    measured.handle_seconds
from measured
left join customers
    on measured.customer_id = customers.customer_id
