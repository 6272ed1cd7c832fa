-- Grain: one row per complaint (latest version).
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
    received_at_local,
    {{ iso_week_start('received_at_local') }} as received_week_start,
    resolved_at_local,
    {{ minutes_between('received_at', 'classified_at') }} as minutes_to_classify,
    {{ minutes_between('classified_at', 'dispatched_at') }} as minutes_to_dispatch,
    {{ minutes_between('received_at', 'solution_at') }} as minutes_to_solution
from {{ ref('stg_complaints__complaints') }}
