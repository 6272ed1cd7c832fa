{{ config(materialized='view') }}
-- Grain: one row per corrective action (docs/actions.md), its current state with the
-- dates of its history that the closure KPIs read. A view: the nightly and the app
-- change actions between builds, and reports read them as they are.
with actions as (
    select * from {{ ref('stg_actions__corrective_actions') }}
),

history as (
    select
        action_id,
        min(case when event = 'done' then happened_on end) as first_done_on,
        max(case when event = 'reopened' then happened_on end) as last_reopened_on,
        count(*) as history_count
    from {{ ref('stg_actions__action_history') }}
    group by action_id
)

select
    actions.action_id,
    actions.finding_kind,
    actions.kpi_id,
    actions.complaint_id,
    actions.audit_id,
    actions.step,
    actions.department,
    actions.owner,
    actions.problem,
    actions.problem_zh,
    actions.opened_at,
    actions.opened_on,
    actions.due_on,
    actions.status,
    actions.cause_group,
    actions.measure,
    actions.done_on,
    actions.verified_on,
    actions.reopened_count,
    history.first_done_on,
    history.last_reopened_on,
    coalesce(history.history_count, 0) as history_count,
    -- Closed by its deadline: done (or verified since) on or before the deadline in
    -- force. A reopened action is not closed, whenever it was done before.
    coalesce(actions.status in ('done', 'verified') and actions.done_on <= actions.due_on,
             false) as is_done_by_due
from actions
left join history
    on actions.action_id = history.action_id
