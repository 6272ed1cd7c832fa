-- Grain: one row per (kpi_id, department, effective_from): a KPI's target and amber
-- band from a day until the next change (effective_until, exclusive; null: until further
-- notice). department null: the whole organisation; a department's own target holds for
-- that department's rows and falls back to the organisation's outside its ranges. The
-- catalogue's targets (seed kpi_definitions) hold from the start; the settings' targets
-- (var kpi_targets, written by servicepulse from `targets:`) replace them from their
-- effective date. A period is judged against the target in force on its first day.
{%- set configured = var('kpi_targets', []) %}
with catalogue as (
    select
        kpi_id,
        cast(null as {{ dbt.type_string() }}) as department,
        cast('1900-01-01' as date) as effective_from,
        cast(target as double precision) as target,
        cast(amber_band as double precision) as amber_band
    from {{ ref('kpi_definitions') }}
    where target is not null
),

configured as (
    {%- for entry in configured %}
    select
        '{{ entry.kpi_id }}' as kpi_id,
        {% if entry.department %}'{{ entry.department }}'{% else %}cast(null as {{ dbt.type_string() }}){% endif %} as department,
        cast('{{ entry.effective_from }}' as date) as effective_from,
        cast({{ entry.target }} as double precision) as target,
        cast({{ 'null' if entry.amber_band is none else entry.amber_band }} as double precision)
            as amber_band
    {{ 'union all' if not loop.last }}
    {%- else %}
    select
        cast(null as {{ dbt.type_string() }}) as kpi_id,
        cast(null as {{ dbt.type_string() }}) as department,
        cast(null as date) as effective_from,
        cast(null as double precision) as target,
        cast(null as double precision) as amber_band
    where 1 = 0
    {%- endfor %}
),

unioned as (
    select * from catalogue
    union all
    -- A configured target without a band keeps the catalogue's band.
    select
        configured.kpi_id,
        configured.department,
        configured.effective_from,
        configured.target,
        coalesce(configured.amber_band, cast(definitions.amber_band as double precision))
    from configured
    left join {{ ref('kpi_definitions') }} as definitions
        on configured.kpi_id = definitions.kpi_id
)

select
    kpi_id,
    department,
    effective_from,
    lead(effective_from) over (
        partition by kpi_id, department order by effective_from
    ) as effective_until,
    target,
    amber_band
from unioned
