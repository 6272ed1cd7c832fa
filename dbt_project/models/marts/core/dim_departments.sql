-- Grain: one row per department seen in tickets or complaints.
select department from {{ ref('stg_crm__tickets') }}
union
select department from {{ ref('stg_complaints__complaints') }}
