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

-- The target in force on the audit's day: the department's own, else the organisation's.
targets as (
    select * from {{ ref('int_kpi_targets_in_force') }}
),

scored as (
    select
        audit_kpis.*,
        coalesce(department_target.target, organisation_target.target) as pass_score
    from audit_kpis
    left join targets as organisation_target
        on audit_kpis.kpi_id = organisation_target.kpi_id
        and organisation_target.department is null
        and cast(audit_kpis.audited_at_local as date) >= organisation_target.effective_from
        and (organisation_target.effective_until is null
             or cast(audit_kpis.audited_at_local as date) < organisation_target.effective_until)
    left join targets as department_target
        on audit_kpis.kpi_id = department_target.kpi_id
        and audit_kpis.department = department_target.department
        and cast(audit_kpis.audited_at_local as date) >= department_target.effective_from
        and (department_target.effective_until is null
             or cast(audit_kpis.audited_at_local as date) < department_target.effective_until)
)

select
    audit_id,
    audit_kind,
    kpi_id,
    department,
    agent_id,
    audited_at,
    audited_at_local,
    total_score,
    pass_score,
    total_score >= pass_score as is_passed
from scored
