{{ config(materialized='incremental', unique_key='ticket_id', incremental_strategy='delete+insert',
          on_schema_change='fail') }}
-- A table, not a view: the facts, their tests and the data's as-of moment read the
-- latest versions several times, and ranking every version of a large source each
-- time cost more than the rest of the build (latest_version: incremental by key).
with latest as (
    {{ latest_version(source('crm', 'crm_tickets'), 'ticket_id') }}
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
    _loaded_at as loaded_at,
    {{ build_started_at() }} as built_at
from latest
