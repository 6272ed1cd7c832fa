-- Every ticket and complaint as a work item that is open from its creation (receipt)
-- until it leaves the backlog (resolved, or delivered with a closed status:
-- left_backlog_at_local); the KPI marts count the items open at each period's end
-- (catalogue: BACKLOG). One row per item.
select
    'ticket' as item_kind,
    ticket_id as item_id,
    created_at_local as opened_at_local,
    left_backlog_at_local as closed_at_local,
    {{ dimension_columns(['department', 'agent_id', 'channel', 'service_type', 'customer_type',
                          'service_level', 'region', 'priority']) }}
from {{ ref('fct_tickets') }}

union all

select
    'complaint',
    complaint_id,
    received_at_local,
    left_backlog_at_local,
    {{ dimension_columns() }}
from {{ ref('fct_complaints') }}
