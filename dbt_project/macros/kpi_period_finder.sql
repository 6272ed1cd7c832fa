{#- The KPI aggregates' period finder: which local days a build of
    int_kpi_observations_aggregated_to_periods (or of int_kpi_measures_aggregated_to_periods,
    each over its own previous build) recomputes, as ranges of consecutive days, and the
    data's as-of moment. The model runs it before it runs itself
    (run_query), so the days and the moment reach the rest of the model as constants:
    the database then applies those bounds while it scans the facts and backlog items,
    rather than carrying every row into the joins and aggregations (with bounds from a
    subquery it materialised every backlog item and converted every ticket's deadline
    to local time). The facts are still scanned whole: their rows are not in time order.

    previous_build: the aggregate as the previous build left it (`this` in an
    incremental build: its as-of moment and the newest load it had seen), or none for a
    full build (every day from the first fact's to the last deadline). Given any
    relation it says what a build would recompute (tests/test_kpi_period_finder.py). -#}

{#- No observation lies more working days after the day its fact started (or after
    its last event) than the longest working-day deadline. -#}
{% macro kpi_horizon_working_days() -%}
    {{- return(([var('complaint_close_working_days'), var('callback_working_days'),
                 var('delivery_promise_working_days')]
                + var('resolution_working_days').values() | list) | max) }}
{%- endmacro %}

{#- The as-of moment and the business calendar with each day's horizon (the latest
    day an observation of a fact started that day can lie on): CTEs that the finder
    and the model share. -#}
{% macro kpi_as_of_and_calendar(horizon_working_days) -%}
as_of as (
    select
        data_as_of_local,
        cast(data_as_of_local as date) as as_of_date
    from {{ ref('int_changes_summarised') }}
),

calendar as (
    select
        days.calendar_date,
        days.iso_week_start,
        days.month_start,
        horizon_deadline.calendar_date as horizon_date
    from {{ ref('dim_dates') }} as days
    {{ join_working_day_deadline('horizon', 'days.calendar_date', horizon_working_days) }}
)
{%- endmacro %}

{#- The finder's query: one row per range of recomputed days (first_day, last_day).
    ``loaded_through``: the previous build's newest load seen (inputs_loaded_through) as
    text, when the finder has read it (kpi_periods_to_recompute): the raw rows loaded
    since are then bounded by a constant, which PostgreSQL's planner estimates from its
    statistics (a few thousand rows, read by the load-time index); bounded by a
    subquery it guessed a third of the table and scanned every raw version.
    ``customers_changed``: whether any customer was loaded since; when none was, the
    facts are not searched by customer, which no index serves. -#}
{% macro kpi_recomputed_day_ranges_query(horizon_working_days, previous_build=none,
                                         loaded_through=none, customers_changed=true) -%}
with {{ kpi_as_of_and_calendar(horizon_working_days) }},

{%- if previous_build is not none %}

previous_build as (
    select
        max(data_as_of_local) as data_as_of_local,
        {{ from_reporting_tz('max(data_as_of_local)') }} as data_as_of
    from {{ previous_build }}
),

{%- for table, key in [('crm_tickets', 'ticket_id'), ('complaints', 'complaint_id'),
                       ('survey_responses', 'response_id'), ('crm_customers', 'customer_id'),
                       ('audits', 'audit_id')] %}
changed_{{ table }} as {{ keys_loaded_since_watermark(raw_table(table), key,
                                                      'inputs_loaded_through', previous_build,
                                                      loaded_through) }},
{%- endfor %}

-- Every version, old and new, of the facts that changed and of the facts that take
-- attributes from them (a ticket's complaints and surveys, a customer's everything):
-- where each started, its last event, and whether it is still open (in the backlog).
{#- Each way a fact is found is its own branch, so that each is read by an index: the
    raw tables' keys, and the survey fact's ticket and complaint (lookup_indexes);
    one condition of ORs over columns some of which no index serves scanned every raw
    version (10 s a night at 10M tickets). #}
{%- set ticket_versions %}
    select created_at as started_at,
           greatest(first_response_at, resolved_at, closed_at, delivered_at, promised_at)
               as last_event_at,
           resolved_at is null as is_open
    from {{ source('crm', 'crm_tickets') }}
{%- endset %}
{%- set survey_versions %}
    select least(sent_at, answered_at), greatest(sent_at, answered_at), false
    from {{ source('surveys', 'survey_responses') }}
{%- endset %}
fact_versions as (
    {{ ticket_versions }}
    where ticket_id in (select ticket_id from changed_crm_tickets)
    {%- if customers_changed %}
    union all
    {{ ticket_versions }}
    where customer_id in (select customer_id from changed_crm_customers)
    {%- endif %}

    union all
    select received_at,
           greatest(classified_at, dispatched_at, solution_at, resolved_at, callback_at),
           resolved_at is null
    from {{ source('complaints', 'complaints') }}
    where complaint_id in (select complaint_id from changed_complaints)
        or ticket_id in (select ticket_id from changed_crm_tickets)
        or customer_id in (select customer_id from changed_crm_customers)

    -- A survey is observed when sent (SURVEY_RESPONSE, answered or not) and when
    -- answered; least and greatest skip a null, and keep the range whole should an
    -- answer carry a time before its sending.
    union all
    {{ survey_versions }}
    where response_id in (select response_id from changed_survey_responses)
    -- The surveys of the tickets and complaints that changed: found among the current
    -- surveys, then every version of each.
    union all
    {{ survey_versions }}
    where response_id in (
        select response_id from {{ ref('fct_survey_responses') }}
        where ticket_id in (select ticket_id from changed_crm_tickets)
        union all
        select response_id from {{ ref('fct_survey_responses') }}
        where complaint_id in (select complaint_id from changed_complaints)
        union all
        select response_id from {{ ref('fct_survey_responses') }}
        where complaint_id in (select complaint_id from {{ source('complaints', 'complaints') }}
                               where ticket_id in (select ticket_id from changed_crm_tickets)))
    {%- if customers_changed %}
    union all
    {{ survey_versions }}
    where customer_id in (select customer_id from changed_crm_customers)
    {%- endif %}

    union all
    select audited_at, audited_at, false
    from {{ source('audits', 'audits') }}
    where audit_id in (select audit_id from changed_audits)
),

-- A fact's observations lie between the day it started and the later of its last
-- event and its longest deadline; an open one is in the backlog up to the as-of day.
changed_ranges as (
    select distinct
        cast({{ to_reporting_tz('started_at') }} as date) as first_day,
        cast({{ to_reporting_tz('coalesce(last_event_at, started_at)') }} as date) as last_event_day,
        is_open
    from fact_versions
),

affected_ranges as (
    select
        changed_ranges.first_day,
        greatest(changed_ranges.last_event_day, starts.horizon_date, events.horizon_date,
                 case when changed_ranges.is_open then as_of.as_of_date end) as last_day
    from changed_ranges
    cross join as_of
    left join calendar as starts
        on starts.calendar_date = changed_ranges.first_day
    left join calendar as events
        on events.calendar_date = changed_ranges.last_event_day

    -- The as-of moment moved: outcomes whose deadline passed since the previous build
    -- are decided now. They are anchored on the due day (RES_RATE, from the day
    -- before the previous as-of moment) or on the start or resolution of the ticket
    -- or complaint whose deadline passed. Deadlines are compared as instants, not
    -- converted to local time row by row.
    union all
    select cast(previous_build.data_as_of_local as date) - 1, as_of.as_of_date
    from previous_build
    cross join as_of

    union all
    select cast(tickets.created_at_local as date), cast(tickets.created_at_local as date)
    from {{ ref('fct_tickets') }} as tickets
    cross join previous_build
    cross join as_of
    where tickets.response_due_at > previous_build.data_as_of
        and tickets.response_due_at <= {{ from_reporting_tz('as_of.data_as_of_local') }}

    union all
    select cast(complaints.received_at_local as date),
           cast(coalesce(complaints.resolved_at_local, complaints.received_at_local) as date)
    from {{ ref('fct_complaints') }} as complaints
    cross join previous_build
    cross join as_of
    where false
    {%- for deadline in ["classify_due_at", "dispatch_due_at", "solution_due_at"] %}
        or (complaints.{{ deadline }} > previous_build.data_as_of
            and complaints.{{ deadline }} <= {{ from_reporting_tz('as_of.data_as_of_local') }})
    {%- endfor %}
    {%- for deadline in ["close_deadline_date", "callback_deadline_date"] %}
        or (complaints.{{ deadline }} >= cast(previous_build.data_as_of_local as date) - 1
            and complaints.{{ deadline }} <= as_of.as_of_date)
    {%- endfor %}
),

{%- else %}

-- Every period from the first fact's to the last day anything can be anchored on.
data_days as (
    select min(first_day) as first_day, max(last_day) as last_day
    from (
        select min(cast(created_at_local as date)) as first_day,
               max(cast(created_at_local as date)) as last_day
        from {{ ref('fct_tickets') }}
        union all
        select min(cast(received_at_local as date)), max(cast(received_at_local as date))
        from {{ ref('fct_complaints') }}
        union all
        select min(cast(least(sent_at_local, answered_at_local) as date)),
               max(cast(greatest(sent_at_local, answered_at_local) as date))
        from {{ ref('fct_survey_responses') }}
        union all
        select min(cast(audited_at_local as date)), max(cast(audited_at_local as date))
        from {{ ref('stg_audits__audits') }}
        union all
        select as_of_date, as_of_date from as_of
    ) as bounds
),

-- The last of those days is as far as a deadline can lie after the last day.
affected_ranges as (
    select data_days.first_day, calendar.horizon_date as last_day
    from data_days
    inner join calendar
        on calendar.calendar_date = data_days.last_day
),

{%- endif %}

affected_days as (
    select distinct calendar.calendar_date, calendar.iso_week_start, calendar.month_start
    from calendar
    inner join (select distinct first_day, last_day from affected_ranges) as ranges
        on calendar.calendar_date between ranges.first_day and ranges.last_day
),

-- Whole weeks and months around every affected day, so each is summed from all its days.
recomputed_days as (
    select calendar_date
    from calendar
    where iso_week_start in (select iso_week_start from affected_days)
        or month_start in (select month_start from affected_days)
),

-- Consecutive days as one range: a day minus its rank is the same within a run.
runs as (
    select
        calendar_date,
        calendar_date - cast(row_number() over (order by calendar_date) as integer) as run_id
    from recomputed_days
)

select min(calendar_date) as first_day, max(calendar_date) as last_day
from runs
group by run_id
order by first_day
{%- endmacro %}

{#- The finder, run: {"day_ranges": [(first, last), ...], "first_day", "last_day"
    (ISO dates, none when nothing is recomputed), "data_as_of_local", "day_before_as_of"}.
    Before the first build of int_changes_summarised (dbt parsing, or a warehouse
    without it) it finds nothing. -#}
{% macro kpi_periods_to_recompute(horizon_working_days, previous_build=none) -%}
    {%- set found = {"day_ranges": [], "first_day": none, "last_day": none,
                     "data_as_of_local": none, "day_before_as_of": none} %}
    {#- Rendered while dbt parses too: that is how dbt learns the models it reads. #}
    {%- set query = kpi_recomputed_day_ranges_query(horizon_working_days, previous_build) %}
    {%- if execute and load_relation(ref('int_changes_summarised')) is not none %}
        {%- if previous_build is not none %}
            {%- set loaded_through = run_query(
                "select cast(" ~ incremental_watermark('inputs_loaded_through', previous_build)
                ~ " as varchar)").rows[0][0] %}
            {%- set customers_changed = run_query(
                "select exists " ~ keys_loaded_since_watermark(
                    raw_table('crm_customers'), 'customer_id', watermark=loaded_through)).rows[0][0] %}
            {%- set query = kpi_recomputed_day_ranges_query(
                horizon_working_days, previous_build, loaded_through, customers_changed) %}
        {%- endif %}
        {%- set ranges = run_query(query).rows %}
        {%- set as_of_row = run_query("select data_as_of_local, cast(data_as_of_local as date) - 1 "
                                      ~ "from " ~ ref('int_changes_summarised')).rows[0] %}
        {%- do found.update({
            "day_ranges": ranges,
            "first_day": (ranges[0][0] | string)[:10] if ranges else none,
            "last_day": (ranges[-1][1] | string)[:10] if ranges else none,
            "data_as_of_local": as_of_row[0],
            "day_before_as_of": (as_of_row[1] | string)[:10] if as_of_row[1] is not none else none}) %}
    {%- endif %}
    {{- return(found) }}
{%- endmacro %}

{#- The CTEs both period aggregates (int_kpi_observations_aggregated_to_periods,
    int_kpi_measures_aggregated_to_periods) build on, after kpi_as_of_and_calendar:
    inputs (the newest load of any source this build has seen: the next build looks for
    versions loaded after it), recomputed_days (the finder's day ranges) and
    recomputed_periods (those days, and the weeks and months they fill whole). -#}
{% macro kpi_recomputed_periods_ctes(day_ranges) -%}
inputs as (
    select max(loaded_at) as inputs_loaded_through
    from (
        {%- for table in raw_table_systems() %}
        select max(_loaded_at) as loaded_at from {{ raw_table(table) }}
        {{- " union all" if not loop.last }}
        {%- endfor %}
    ) as loads
),

recomputed_days as (
    select calendar_date, iso_week_start, month_start
    from calendar
    where {{ day_in_ranges('calendar_date', day_ranges) }}
),

recomputed_periods as (
    select 'day' as period_grain, calendar_date as period_start
    from recomputed_days
    union all
    select 'week', iso_week_start
    from recomputed_days
    group by iso_week_start
    having count(*) = 7
    union all
    select 'month', month_start
    from recomputed_days
    group by month_start
    having count(*) = (select count(*) from calendar as month_days
                       where month_days.month_start = recomputed_days.month_start)
)
{%- endmacro %}

{#- The observations of the days a period aggregate recomputes, as a condition on
    int_kpi_observations_unioned (nothing in a full build): each range of days as a
    range of the observation's local moment, which both databases apply to each fact's
    anchor column as they read it. DuckDB skips the row groups outside the outer bounds;
    PostgreSQL reads each range by the facts' indexes on their anchor columns (the
    facts' meta.lookup_indexes), so a night that recomputes two months reads those
    months' facts, not the history (a scan of 10M tickets per anchor, every night). -#}
{% macro kpi_observed_in_recomputed_days(found) -%}
    {%- if is_incremental() -%}
    observed_at_local >= {{ typed_literal(found.first_day, 'timestamp') }}
        and observed_at_local < {{ typed_literal(found.last_day, 'timestamp') }} + interval '1 day'
        and {{ moment_in_day_ranges('observed_at_local', found.day_ranges) }}
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of int_kpi_observations_aggregated_to_periods, for a warehouse built before
    the percentiles moved to int_kpi_measures_aggregated_to_periods: drop the aggregate's
    median_measure and p90_measure, which its incremental build (on_schema_change
    'fail') would otherwise refuse. Its other rows stay right; the new model is built
    whole on its first build. Nothing to do on a newer warehouse. -#}
{% macro drop_columns_moved_to_measures() %}
    {%- if is_incremental() %}
    alter table {{ this }} drop column if exists median_measure;
    alter table {{ this }} drop column if exists p90_measure
    {%- endif %}
{% endmacro %}

{#- The final select of both period aggregates: the rows of CTE `rows_cte` (period_grain,
    period_start, kpi_id, dimension, dimension_value, then `value_columns`), and again for
    each KPI that is another statistic of a KPI's observations (FRT_P90, the P90 of FRT's
    response times: kpi_definitions.observations_of), so each observation is aggregated
    once; with the as-of moment and the newest load seen (CTEs as_of and inputs). Rows of
    no dimension value (facts that cannot say it) are left out. Starts with a CTE: call
    it after a comma. -#}
{% macro kpi_period_rows(rows_cte, value_columns) -%}
kpis_observed as (
    select kpi_id, observations_of as observed_kpi_id
    from {{ ref('kpi_definitions') }}
    where observations_of is not null
)

select
    rows_.period_grain,
    rows_.period_start,
    rows_.kpi_id,
    rows_.dimension,
    rows_.dimension_value,
    {%- for column in value_columns %}
    rows_.{{ column }},
    {%- endfor %}
    as_of.data_as_of_local,
    inputs.inputs_loaded_through
from (
    select * from {{ rows_cte }}
    union all
    select {{ rows_cte }}.period_grain, {{ rows_cte }}.period_start, kpis_observed.kpi_id,
           {{ rows_cte }}.dimension, {{ rows_cte }}.dimension_value
           {%- for column in value_columns %}, {{ rows_cte }}.{{ column }}{% endfor %}
    from {{ rows_cte }}
    inner join kpis_observed
        on {{ rows_cte }}.kpi_id = kpis_observed.observed_kpi_id
) as rows_
cross join as_of
cross join inputs
where rows_.dimension_value is not null
{%- endmacro %}
