-- Grain: one row per process audit or mystery-shopper visit (latest version), with the
-- KPI it counts in (TPS, TDS) and whether its total reached that KPI's target: a
-- failed audit is a finding of the rectification loop (servicepulse.actions).
with audits as (
    select * from {{ ref('stg_audits__audits') }}
),

audit_kpis as (
    select
        audits.*,
        case when audits.audit_kind = 'process_audit' then 'TPS' else 'TDS' end as kpi_id
    from audits
),

definitions as (
    select kpi_id, target from {{ ref('kpi_definitions') }}
)

select
    audit_kpis.audit_id,
    audit_kpis.audit_kind,
    audit_kpis.kpi_id,
    audit_kpis.department,
    audit_kpis.agent_id,
    audit_kpis.audited_at,
    audit_kpis.audited_at_local,
    audit_kpis.total_score,
    definitions.target as pass_score,
    audit_kpis.total_score >= definitions.target as is_passed
from audit_kpis
left join definitions
    on audit_kpis.kpi_id = definitions.kpi_id
