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
    {{ minutes_between('received_at', 'solution_at') }} as minutes_to_solution,
    -- Step deadlines of the complaint process (catalogue: STEP_SLA, CMP_SOLUTION_24H).
    -- A step not taken yet counts as missed.
    coalesce({{ minutes_between('received_at', 'classified_at') }} <= 30, false)
        as is_classified_in_30_minutes,
    coalesce({{ minutes_between('classified_at', 'dispatched_at') }} <= 60, false)
        as is_dispatched_in_1_hour,
    coalesce({{ minutes_between('received_at', 'solution_at') }} <= 24 * 60, false)
        as has_solution_in_24_hours,
    escalated_to is not null as is_escalated
from {{ ref('stg_complaints__complaints') }}
