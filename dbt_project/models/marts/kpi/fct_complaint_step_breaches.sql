-- Grain: one row per (complaint, process step) that missed its deadline, as known at
-- the data's as-of moment: the weekly report's SLA breach list (which complaint,
-- which step, how late). Counted in the same period as its KPI, so per period and
-- step the rows equal the KPI's denominator minus its numerator.
with steps as (
    select * from {{ ref('int_complaint_steps_evaluated') }}
    where is_outcome_known and not is_met
),

complaints as (
    select complaint_id, received_at_local from {{ ref('fct_complaints') }}
)

select
    steps.complaint_id,
    steps.step,
    steps.kpi_id,
    steps.anchored_at_local,
    {{ period_start('week', 'steps.anchored_at_local') }} as anchored_week_start,
    {{ period_start('month', 'steps.anchored_at_local') }} as anchored_month_start,
    complaints.received_at_local,
    steps.due_at_local,
    steps.done_at_local,
    -- Where the system gives only its verdict on the step (no time), whether and when
    -- it was done is unknown: neither "still undone" nor a lateness is claimed.
    steps.done_at_local is null and steps.minutes_past_due is not null as is_still_undone,
    -- Late by: until done, or until the data's as-of moment while still undone.
    steps.minutes_past_due as minutes_late,
    steps.department,
    steps.agent_id,
    steps.complaint_category,
    steps.priority as severity
from steps
inner join complaints
    on steps.complaint_id = complaints.complaint_id
