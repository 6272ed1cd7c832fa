{#- One KPI table per period grain ('day'; 'week': ISO weeks, Monday first; 'month':
    calendar months), all in the reporting time zone.

    Grain of the result: one row per (period_start, dimension, dimension_value, kpi_id)
    for every period from the first observation's to the one holding the data's as-of
    moment (int_changes_summarised):
    - the organisation ('organisation', 'all') and every department, for every KPI;
    - every other dimension of kpi_dimensions(): each value it was observed with,
      for every KPI it can cut (observed with any value); no rows for KPIs a
      dimension cannot cut, such as response times by complaint category.
    A KPI with nothing to measure has denominator 0 and a null value; a stock (count)
    with nothing open is 0.

    The sums and stocks come from int_kpi_observations_aggregated_to_periods, the
    percentiles from int_kpi_measures_aggregated_to_periods (each one aggregation of the
    observations for all three grains, incremental by period); this macro adds the spine
    of periods and slices, the values, the weighted KPIs, targets, statuses and the
    previous period's value, which cost in proportion to periods x slices, not to rows.

    Incremental by period (delete+insert on period_start): a nightly build rewrites the
    periods kpi_periods_to_rebuild names, the others keep their rows; a full refresh
    gives the same rows (tests/test_incremental.py). Rewriting every period of a long
    history took 2.2 s of a nightly build at 10M tickets (2.3M day rows). -#}
{% macro kpi_period_table(grain) %}
{%- set step = period_step(grain) -%}
{%- set std = checked_weights('std_compliance_weights',
        ['response_in_sla', 'first_contact_resolution', 'excellent_surveys']) -%}
{%- set composite = checked_weights('composite_weights',
        ['satisfaction', 'efficiency', 'compliance']) -%}
{%- set fingerprint = kpi_rules_fingerprint() -%}
{%- set rebuilt_periods = kpi_periods_to_rebuild(grain, fingerprint) -%}
with {{ kpi_spine_ctes(grain) }},

{#- A nightly build values the periods it rewrites and the period before each, whose
    value is the rewritten one's previous_value. -#}
valued_periods as (
    select period_start
    from periods
    {%- if rebuilt_periods is not none %}
    where period_start in ({{ kpi_period_literals(rebuilt_periods) }})
        or cast(period_start + {{ step }} as date) in ({{ kpi_period_literals(rebuilt_periods) }})
    {%- endif %}
),

{#- The aggregate's sums and percentiles of those periods. A nightly build reads them
    from the models by period (on PostgreSQL by their period index), not the history:
    joined through a CTE of the whole aggregate, PostgreSQL sorted every period's rows each
    night (kpi_daily on ten times the history: 4.5 s -> 13.7 s). -#}
{%- set valued_period_filter -%}
    {%- if rebuilt_periods is not none %}
        and period_start in ({{ kpi_period_literals(rebuilt_periods + kpi_periods_before(rebuilt_periods, grain)) }})
    {%- endif %}
{%- endset %}
valued_sums as (
    select period_start, kpi_id, dimension, dimension_value, numerator, denominator
    from {{ ref('int_kpi_observations_aggregated_to_periods') }}
    where period_grain = '{{ grain }}'{{ valued_period_filter }}
),

valued_percentiles as (
    select period_start, kpi_id, dimension, dimension_value, median_measure, p90_measure
    from {{ ref('int_kpi_measures_aggregated_to_periods') }}
    where period_grain = '{{ grain }}'{{ valued_period_filter }}
),

spine as (
    select valued_periods.period_start, slices.dimension, slices.dimension_value, definitions.*
    from valued_periods
    cross join slices
    inner join definitions
        on slices.kpi_id = definitions.kpi_id
    where definitions.kind <> 'weighted'
),

measured as (
    select
        spine.period_start,
        spine.dimension,
        spine.dimension_value,
        spine.kpi_id,
        case when spine.kind in ('median', 'p90') then null
             else coalesce(aggregated.numerator, 0) end as numerator,
        coalesce(aggregated.denominator, 0) as denominator,
        {{ kpi_value('spine.kind', 'aggregated.numerator', 'aggregated.denominator',
                     'percentiles.median_measure', 'percentiles.p90_measure') }} as value
    from spine
    left join valued_sums as aggregated
        on spine.period_start = aggregated.period_start
        and spine.dimension = aggregated.dimension
        and spine.dimension_value = aggregated.dimension_value
        and spine.kpi_id = aggregated.kpi_id
    -- The percentiles of the slices with observations (every measure is one), joined
    -- here only: the spine's CTEs read the sums alone.
    left join valued_percentiles as percentiles
        on aggregated.period_start = percentiles.period_start
        and aggregated.dimension = percentiles.dimension
        and aggregated.dimension_value = percentiles.dimension_value
        and aggregated.kpi_id = percentiles.kpi_id
),

-- Weighted KPIs of one slice and period, from that slice's component values; null
-- unless every component has a value (a weight never stands in for missing data).
-- Slices that cannot measure every component (complaint category) get none.
components as (
    select
        period_start,
        dimension,
        dimension_value,
        max(case when kpi_id = 'RESP_SLA' then value end) as response_in_sla,
        max(case when kpi_id = 'FCR' then value end) as first_contact_resolution,
        -- The share of answered surveys whose mean dimension score is excellent.
        max(case when kpi_id = 'SAT_EXCELLENT' then value end) as excellent_surveys,
        max(case when kpi_id = 'CSI' then value end) as satisfaction_index,
        max(case when kpi_id = 'RES_RATE' then value end) as resolution_rate,
        count(case when kpi_id in ('RESP_SLA', 'FCR', 'SAT_EXCELLENT', 'CSI', 'RES_RATE')
                   then 1 end) as component_rows
    from measured
    group by 1, 2, 3
),

compliance as (
    select
        components.*,
        {{ std['response_in_sla'] }} * response_in_sla
            + {{ std['first_contact_resolution'] }} * first_contact_resolution
            + {{ std['excellent_surveys'] }} * excellent_surveys as std_compliance
    from components
    where component_rows = 5
),

weighted as (
    select period_start, dimension, dimension_value, 'STD_COMPLIANCE' as kpi_id,
           std_compliance as value
    from compliance
    union all
    -- Efficiency: answered in time and resolved by the due date, on 0-100.
    select period_start, dimension, dimension_value, 'COMPOSITE',
           {{ composite['satisfaction'] }} * satisfaction_index
           + {{ composite['efficiency'] }} * 100 * (response_in_sla + resolution_rate) / 2
           + {{ composite['compliance'] }} * 100 * std_compliance
    from compliance
),

valued as (
    select period_start, dimension, dimension_value, kpi_id, numerator, denominator, value
    from measured
    union all
    select period_start, dimension, dimension_value, kpi_id,
           cast(null as double precision),
           case when value is null then 0 else 1 end,
           value
    from weighted
),

-- Each value beside the one of the period before, where that period was valued (every
-- slice has a row in every valued period). A window, not a join of `valued` with
-- itself: PostgreSQL, guessing a few thousand rows where there are 270,000, merged that
-- join on two of its four keys and filtered 33M pairs, a number that grows with the
-- square of the periods: the select of a 1M-ticket nightly kpi_daily took 10.7 s, now 3.0 s.
valued_with_previous as (
    select
        valued.*,
        case when lag(period_start) over slice_history = cast(period_start - {{ step }} as date)
             then lag(value) over slice_history end as previous_period_value
    from valued
    window slice_history as (partition by dimension, dimension_value, kpi_id order by period_start)
)

select
    current_period.period_start,
    cast(current_period.period_start + {{ step }} - interval '1 day' as date) as period_end,
    current_period.dimension,
    current_period.dimension_value,
    current_period.kpi_id,
    definitions.display_order,
    definitions.name_zh,
    definitions.name_en,
    definitions.unit,
    definitions.direction,
    definitions.report_section,
    -- A KPI whose inputs a source does not deliver is not measured: no value, no
    -- status, never 0 % (catalogue), whatever its observations add up to.
    case when definitions.not_measured_reason is null then current_period.numerator end
        as numerator,
    case when definitions.not_measured_reason is null then current_period.denominator end
        as denominator,
    case when definitions.not_measured_reason is null then current_period.value end as value,
    -- The target in force on the period's first day: the department's own for its
    -- rows, else the organisation's (int_kpi_targets_in_force).
    coalesce(department_target.target, organisation_target.target) as target,
    case when definitions.not_measured_reason is null then
        {{ kpi_status('current_period.value',
                      'coalesce(department_target.target, organisation_target.target)',
                      'coalesce(department_target.amber_band, organisation_target.amber_band)',
                      'definitions.direction') }}
    end as status,
    case when definitions.not_measured_reason is null then current_period.previous_period_value end
        as previous_value,
    definitions.not_measured_reason,
    inputs.inputs_loaded_through,
    '{{ fingerprint }}' as rules_fingerprint
from valued_with_previous as current_period
cross join (
    select max(inputs_loaded_through) as inputs_loaded_through
    from {{ ref('int_kpi_observations_aggregated_to_periods') }}
    where period_grain = '{{ grain }}'
) as inputs
inner join definitions
    on current_period.kpi_id = definitions.kpi_id
left join {{ ref('int_kpi_targets_in_force') }} as organisation_target
    on current_period.kpi_id = organisation_target.kpi_id
    and organisation_target.department is null
    and current_period.period_start >= organisation_target.effective_from
    and (organisation_target.effective_until is null
         or current_period.period_start < organisation_target.effective_until)
left join {{ ref('int_kpi_targets_in_force') }} as department_target
    on current_period.kpi_id = department_target.kpi_id
    and current_period.dimension = 'department'
    and current_period.dimension_value = department_target.department
    and current_period.period_start >= department_target.effective_from
    and (department_target.effective_until is null
         or current_period.period_start < department_target.effective_until)
{%- if rebuilt_periods is not none %}
where current_period.period_start in ({{ kpi_period_literals(rebuilt_periods) }})
{%- endif %}
{% endmacro %}

{#- The periods a KPI table spans and the slices it cuts them by (see kpi_period_table),
    as CTEs: definitions, periods, observed_slices, slices. Each reads the aggregate by
    its indexes on PostgreSQL (the span's ends, the distinct slices), never its history
    whole: these CTEs run in every nightly build of every KPI table, and read through
    one CTE of the whole aggregate, PostgreSQL materialised it each time. -#}
{% macro kpi_spine_ctes(grain) %}
definitions as (
    select
        kpi_definitions.*,
        {{ kpi_not_measured_reason('kpi_definitions.kpi_id') }} as not_measured_reason
    from {{ ref('kpi_definitions') }} as kpi_definitions
),

{#- The span: from the first to the last period of an organisation-wide flow KPI (a
    stock is measured in every period up to its deadlines, a flow only where something
    happened). Each end is the first row in the order of the aggregate's unique key. #}
{%- set organisation_flows %}
    from {{ ref('int_kpi_observations_aggregated_to_periods') }}
    where period_grain = '{{ grain }}'
        and dimension = 'organisation'
        and kpi_id in (select kpi_id from definitions where kind <> 'count')
        and period_start is not null
{%- endset %}
periods as (
    select cast(series.period_start as date) as period_start
    from generate_series(
        (select cast(period_start as timestamp) {{ organisation_flows }}
         order by period_start limit 1),
        -- The last period is the one the data's as-of moment falls in: deadlines
        -- may lie later, but nothing after the data's "now" is known yet.
        (select cast(least(
            (select period_start {{ organisation_flows }} order by period_start desc limit 1),
            (select {{ period_start(grain, 'data_as_of_local') }}
             from {{ ref('int_changes_summarised') }})) as timestamp)),
        {{ period_step(grain) }}
    ) as series(period_start)
),

observed_slices as (
    {{ kpi_observed_slices(grain) }}
),

slices as (
    select 'organisation' as dimension, 'all' as dimension_value, kpi_id
    from definitions
    union all
    select 'department', departments.department, definitions.kpi_id
    from {{ ref('dim_departments') }} as departments
    cross join definitions
    union all
    -- Every value of another dimension, for every KPI that dimension can cut.
    select dimension_values.dimension, dimension_values.dimension_value, dimension_kpis.kpi_id
    from (select distinct dimension, dimension_value from observed_slices) as dimension_values
    inner join (select distinct dimension, kpi_id from observed_slices) as dimension_kpis
        on dimension_values.dimension = dimension_kpis.dimension
    where dimension_values.dimension not in ('organisation', 'department')
)
{% endmacro %}

{#- The distinct (dimension, dimension_value, kpi_id) of the aggregate's rows of a grain,
    as a select. DuckDB scans the columns. PostgreSQL walks the aggregate's index on
    kpi_slice_lookup_columns() from one slice to the next (a recursive CTE: one index
    probe per slice, however many periods each has); its DISTINCT would read every row
    of the history. The index is made by refresh_planner_statistics (the aggregate's
    meta.lookup_indexes) after the aggregate is built. Where it is not there yet (the
    KPI tables built alone, `dbt build -s kpi_daily`, before the aggregate was built by
    a version that makes it), the walk would read and sort every row of the grain once
    per slice: the KPI table then takes DISTINCT, as on DuckDB. -#}
{% macro kpi_observed_slices(grain) %}
    {{- return(adapter.dispatch('kpi_observed_slices')(grain)) }}
{% endmacro %}

{#- The columns of the aggregate's index the slice walk follows (its model's
    meta.lookup_indexes names them by this macro). -#}
{% macro kpi_slice_lookup_columns() %}
    {{- return(['period_grain', 'dimension', 'dimension_value', 'kpi_id']) }}
{% endmacro %}

{% macro default__kpi_observed_slices(grain) %}
    select distinct dimension, dimension_value, kpi_id
    from {{ ref('int_kpi_observations_aggregated_to_periods') }}
    where period_grain = '{{ grain }}'
        and dimension_value is not null and kpi_id is not null
{% endmacro %}

{% macro postgres__kpi_observed_slices(grain) %}
    {%- set aggregate = ref('int_kpi_observations_aggregated_to_periods') %}
    {%- if execute and not relation_has_index(aggregate, kpi_slice_lookup_columns()) %}
        {{- return(default__kpi_observed_slices(grain)) }}
    {%- endif %}
    {%- set slice_filter -%}
        period_grain = '{{ grain }}' and dimension_value is not null and kpi_id is not null
    {%- endset %}
    with recursive walk as (
        (select dimension, dimension_value, kpi_id
         from {{ aggregate }}
         where {{ slice_filter }}
         order by dimension, dimension_value, kpi_id
         limit 1)
        union all
        select next_slice.dimension, next_slice.dimension_value, next_slice.kpi_id
        from walk
        cross join lateral (
            select dimension, dimension_value, kpi_id
            from {{ aggregate }}
            where {{ slice_filter }}
                and (dimension, dimension_value, kpi_id)
                    > (walk.dimension, walk.dimension_value, walk.kpi_id)
            order by dimension, dimension_value, kpi_id
            limit 1
        ) as next_slice
    )
    select dimension, dimension_value, kpi_id from walk
{% endmacro %}

{#- A digest of everything a KPI table takes from configuration rather than from the
    aggregate: the kpi_definitions seed (names, targets, bands, kinds), the weights and
    the configured targets (var kpi_targets; each period keeps the target in force on
    its first day, so a rebuild after a new target recolours only its periods).
    Every row carries it; a build under other rules rebuilds every period. Empty in a
    dbt unit test, whose seed is given as rows, not a table to query. -#}
{% macro kpi_rules_fingerprint() %}
    {%- if not execute or model.resource_type == 'unit_test' %}
        {{- return('') }}
    {%- endif %}
    {%- set definitions = run_query('select * from ' ~ ref('kpi_definitions') ~ ' order by kpi_id') %}
    {%- set rules = [definitions.column_names | join('|')] %}
    {%- for row in definitions.rows %}
        {%- do rules.append(row | join('|')) %}
    {%- endfor %}
    {%- do rules.append(tojson(var('std_compliance_weights'))) %}
    {%- do rules.append(tojson(var('kpis_not_measured'))) %}
    {%- do rules.append(tojson(var('composite_weights'))) %}
    {%- do rules.append(tojson(var('kpi_targets', []))) %}
    {{- return(local_md5(rules | join('\n'))) }}
{% endmacro %}

{#- The periods a nightly build of a KPI table rewrites, as 'YYYY-MM-DD' strings, or
    none for all of them. Found before the model's SQL is written (run_query), so the
    SQL reads them as constants. A period is rewritten when the aggregate rebuilt it
    since this table's newest inputs (inputs_loaded_through: a night that failed here
    is caught up the next), when the period before it was (its previous_value), and
    when the table lacks it (the as-of moment moved into it). Every period is
    rewritten when the slices changed (a new department, agent or other dimension
    value gets a row in every period, one no longer observed loses them) or the rules
    did (kpi_rules_fingerprint). Periods outside the span are deleted by
    kpi_delete_periods_outside_span, a pre-hook.

    Nothing here reads the table's or the aggregate's history (on PostgreSQL each is
    an index lookup). Every period of the table carries the same slices and rules:
    each build writes every period it writes with the current ones, and rewrites all
    of them when those changed. So the stored slices and rules are read from the
    table's first and last periods. -#}
{% macro kpi_periods_to_rebuild(grain, fingerprint) %}
    {%- if not execute or model.resource_type == 'unit_test' or not is_incremental() %}
        {{- return(none) }}
    {%- endif %}
    {%- set rebuild_all_query %}
    with {{ kpi_spine_ctes(grain) }},

    measured_slices as (
        select dimension, dimension_value, kpi_id
        from slices
        where kpi_id in (select kpi_id from definitions where kind <> 'weighted')
    ),

    stored_rows as (
        select dimension, dimension_value, kpi_id, rules_fingerprint
        from {{ this }}
        where period_start = (select min(period_start) from {{ this }})
            or period_start = (select max(period_start) from {{ this }})
    ),

    stored_slices as (
        select distinct dimension, dimension_value, kpi_id
        from stored_rows
        where kpi_id in (select kpi_id from definitions where kind <> 'weighted')
    )

    select
        exists (select 1 from stored_rows
                where rules_fingerprint is null or rules_fingerprint <> '{{ fingerprint }}')
        or exists (select * from measured_slices except select * from stored_slices)
        or exists (select * from stored_slices except select * from measured_slices)
    {%- endset %}
    {%- if run_query(rebuild_all_query).rows[0][0] %}
        {{- return(none) }}
    {%- endif %}

    {%- set periods_query %}
    with {{ kpi_spine_ctes(grain) }},

    rebuilt_by_aggregate as (
        select distinct period_start
        from {{ ref('int_kpi_observations_aggregated_to_periods') }}
        where period_grain = '{{ grain }}'
            and inputs_loaded_through > (select max(inputs_loaded_through) from {{ this }})
    )

    select period_start
    from periods
    where period_start in (select period_start from rebuilt_by_aggregate)
        or cast(period_start - {{ period_step(grain) }} as date)
            in (select period_start from rebuilt_by_aggregate)
        or not exists (select 1 from {{ this }} as stored
                       where stored.period_start = periods.period_start)
    order by period_start
    {%- endset %}
    {%- set periods = [] %}
    {%- for row in run_query(periods_query).rows %}
        {%- do periods.append((row[0] | string)[:10]) %}
    {%- endfor %}
    {{- return(periods) }}
{% endmacro %}

{#- The period before each of ``periods`` ('YYYY-MM-DD' strings, as
    kpi_periods_to_rebuild gives them), in the same form. -#}
{% macro kpi_periods_before(periods, grain) %}
    {%- set before = [] %}
    {%- for period in periods %}
        {%- set start = modules.datetime.date.fromisoformat(period) %}
        {%- if grain == 'day' %}
            {%- set previous = start - modules.datetime.timedelta(days=1) %}
        {%- elif grain == 'week' %}
            {%- set previous = start - modules.datetime.timedelta(days=7) %}
        {%- else %}
            {%- set previous = (start - modules.datetime.timedelta(days=1)).replace(day=1) %}
        {%- endif %}
        {%- do before.append(previous.isoformat()) %}
    {%- endfor %}
    {{- return(before) }}
{% endmacro %}

{#- Periods as a list of date literals for `in (...)`; null matches nothing. -#}
{% macro kpi_period_literals(periods) -%}
    {%- for period in periods %}{{ typed_literal(period, 'date') }}{{ ", " if not loop.last }}{% endfor -%}
    {%- if not periods %}null{% endif -%}
{%- endmacro %}

{#- Pre-hook of the KPI tables: in a nightly build, delete the periods now outside the
    span (the first observation moved later after a correction), which no rewritten
    period replaces. The span has no gaps, so that is what lies before its first period
    or after its last: found first, then deleted by range (PostgreSQL's period index),
    not by a look at every row of the table. -#}
{% macro kpi_delete_periods_outside_span(grain) %}
    {%- if execute and is_incremental() %}
        {%- set span_query %}
        with {{ kpi_spine_ctes(grain) }}
        select min(period_start), max(period_start)
        from periods
        {%- endset %}
        {%- set span = run_query(span_query).rows[0] %}
    delete from {{ this }}
        {%- if span[0] is not none %}
    where period_start < {{ typed_literal((span[0] | string)[:10], 'date') }}
        or period_start > {{ typed_literal((span[1] | string)[:10], 'date') }}
        {%- endif %}
    {%- endif %}
{% endmacro %}

{#- Why a KPI cannot be measured with the configured sources, or null: var
    kpis_not_measured (KPI id -> reason), which servicepulse computes from each KPI's
    requires (seed kpi_definitions) and what the connectors say the sources lack
    (servicepulse.coverage). Run by hand without it, every KPI is measured. -#}
{% macro kpi_not_measured_reason(kpi_id) -%}
    {%- set reasons = var('kpis_not_measured') -%}
    {%- if reasons -%}
        case {{ kpi_id }}
        {%- for kpi, reason in reasons.items() %}
            when {{ typed_literal(kpi, 'varchar') }} then {{ typed_literal(reason | replace("'", "''"), 'varchar') }}
        {%- endfor %}
        end
    {%- else -%}
        cast(null as varchar)
    {%- endif -%}
{%- endmacro %}
