with latest as (
    {{ latest_version(source('raw', 'crm_tickets'), 'ticket_id') }}
)

select
    ticket_id,
    customer_id,
    channel,
    service_type,
    department,
    agent_id,
    priority,
    status,
    cast(contacts_to_resolve as integer) as contacts_to_resolve,
    cast(handle_seconds as bigint) as handle_seconds,
    created_at,
    first_response_at,
    resolved_at,
    closed_at,
    promised_at,
    delivered_at,
    {{ to_reporting_tz('created_at') }} as created_at_local,
    {{ to_reporting_tz('first_response_at') }} as first_response_at_local,
    {{ to_reporting_tz('resolved_at') }} as resolved_at_local,
    {{ to_reporting_tz('closed_at') }} as closed_at_local,
    {{ to_reporting_tz('delivered_at') }} as delivered_at_local,
    updated_at,
    -- When the warehouse received this version: incremental facts pick up changes by it.
    _loaded_at as loaded_at
from latest
