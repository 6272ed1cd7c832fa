-- One row per corrective action, its current state, with local dates; no rows before
-- the first night has tracked actions (macros/actions.sql).
with actions as (
    {{ actions_table_or_empty('corrective_actions', {
        'action_id': 'varchar', 'finding_kind': 'varchar', 'kpi_id': 'varchar',
        'complaint_id': 'varchar', 'audit_id': 'varchar', 'step': 'varchar',
        'department': 'varchar', 'owner': 'varchar', 'problem': 'varchar',
        'problem_zh': 'varchar',
        'opened_at': 'timestamptz', 'due_on': 'date',
        'status': 'varchar', 'cause_group': 'varchar', 'measure': 'varchar',
        'done_at': 'timestamptz',
        'verified_at': 'timestamptz',
        'reopened_count': 'integer'}) }}
)

select
    action_id,
    finding_kind,
    kpi_id,
    complaint_id,
    audit_id,
    step,
    department,
    owner,
    problem,
    problem_zh,
    opened_at,
    cast({{ to_reporting_tz('opened_at') }} as date) as opened_on,
    due_on,
    status,
    cause_group,
    measure,
    done_at,
    cast({{ to_reporting_tz('done_at') }} as date) as done_on,
    verified_at,
    cast({{ to_reporting_tz('verified_at') }} as date) as verified_on,
    reopened_count
from actions
