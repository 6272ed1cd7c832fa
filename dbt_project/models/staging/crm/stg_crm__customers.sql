with latest as (
    {{ latest_version(source('crm', 'crm_customers'), 'customer_id') }}
)

select
    customer_id,
    name as customer_name,
    phone as customer_phone,
    customer_type,
    service_level,
    region,
    created_at,
    {{ to_reporting_tz('created_at') }} as created_at_local,
    updated_at,
    -- When the warehouse received this version: incremental facts pick up changes by it.
    _loaded_at as loaded_at,
    {{ build_started_at() }} as built_at
from latest
