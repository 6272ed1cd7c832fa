{{ config(materialized='incremental', unique_key='complaint_id', incremental_strategy='delete+insert',
          on_schema_change='append_new_columns') }}
-- A table, not a view: the facts, their tests and the data's as-of moment read the
-- latest versions several times, and ranking every version of a large source each
-- time cost more than the rest of the build (latest_version: incremental by key).
with latest as (
    {{ latest_version(source('complaints', 'complaints'), 'complaint_id') }}
)

select
    complaint_id,
    ticket_id,
    customer_id,
    category,
    severity,
    department,
    status,
    escalated_to,
    received_at,
    classified_at,
    dispatched_at,
    solution_at,
    resolved_at,
    callback_at,
    -- The system's own verdict on a step, where it records one (contract: optional).
    classified_in_time,
    dispatched_in_time,
    solution_in_time,
    {{ to_reporting_tz('received_at') }} as received_at_local,
    {{ to_reporting_tz('resolved_at') }} as resolved_at_local,
    {{ to_reporting_tz('callback_at') }} as callback_at_local,
    updated_at,
    -- When the warehouse received this version: incremental facts pick up changes by it.
    _loaded_at as loaded_at,
    {{ build_started_at() }} as built_at
from latest
