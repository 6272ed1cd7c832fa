-- One row per change of a corrective action (append-only), with its local date.
with history as (
    {{ actions_table_or_empty('action_history', {
        'action_id': 'varchar', 'seq': 'integer',
        'happened_at': 'timestamptz',
        'actor': 'varchar', 'event': 'varchar'}) }}
)

select
    action_id,
    seq,
    happened_at,
    cast({{ to_reporting_tz('happened_at') }} as date) as happened_on,
    actor,
    event
from history
