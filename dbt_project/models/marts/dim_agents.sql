-- Grain: one row per agent seen in tickets or audits, with the department of their
-- most recent ticket or audit: a department's report lists the agents who work
-- there now, and an agent who moved appears once.
with appearances as (
    select agent_id, department, created_at_local as seen_at_local, ticket_id as source_key
    from {{ ref('fct_tickets') }}
    where agent_id is not null
    union all
    select agent_id, department, audited_at_local, audit_id
    from {{ ref('stg_audits__audits') }}
    where agent_id is not null
),

ranked as (
    select
        appearances.*,
        row_number() over (
            partition by agent_id order by seen_at_local desc, source_key desc
        ) as recency
    from appearances
)

select
    agent_id,
    department,
    seen_at_local as last_seen_at_local
from ranked
where recency = 1
