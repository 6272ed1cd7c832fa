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

-- Each agent's last moment first (one pass, no sort of every appearance), then the
-- appearances at that moment, the newest key winning a tie.
last_seen as (
    select agent_id, max(seen_at_local) as last_seen_at_local
    from appearances
    group by agent_id
),

ranked as (
    select
        appearances.agent_id,
        appearances.department,
        appearances.seen_at_local,
        row_number() over (
            partition by appearances.agent_id order by appearances.source_key desc
        ) as recency
    from appearances
    inner join last_seen
        on appearances.agent_id = last_seen.agent_id
        and appearances.seen_at_local = last_seen.last_seen_at_local
)

select
    agent_id,
    department,
    seen_at_local as last_seen_at_local
from ranked
where recency = 1
