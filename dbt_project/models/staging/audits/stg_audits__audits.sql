with latest as (
    {{ latest_version(source('audits', 'audits'), 'audit_id') }}
)

select
    audit_id,
    kind as audit_kind,
    department,
    agent_id,
    audited_at,
    {{ to_reporting_tz('audited_at') }} as audited_at_local,
    score_1,
    score_2,
    score_3,
    score_1 + score_2 + score_3 as total_score,
    updated_at
from latest
