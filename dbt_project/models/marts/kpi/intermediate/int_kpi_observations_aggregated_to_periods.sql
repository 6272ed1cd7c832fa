{{ config(materialized='incremental', unique_key=['period_grain', 'period_start'],
          incremental_strategy='delete+insert', on_schema_change='fail',
          pre_hook="{{ drop_columns_moved_to_measures() }}",
          post_hook="{{ drop_materialised_rows('kpi_observations_to_aggregate') }}",
          meta={'lookup_indexes': [kpi_slice_lookup_columns()]}) }}
-- Grain: one row per (period_grain, period_start, kpi_id, dimension, dimension_value):
-- every KPI observation summed per local day, ISO week and calendar month, for the
-- organisation ('organisation', 'all') and each value of every dimension of
-- kpi_dimensions(); and the stocks (BACKLOG and its ageing buckets) measured at the
-- period's end or at the data's as-of moment, whichever is earlier. The KPI marts turn
-- these rows, with the percentiles of int_kpi_measures_aggregated_to_periods (a model
-- of its own, so the two run side by side), into values, targets and statuses;
-- aggregating here once, not in each mart, reads the observations once.
--
-- Incremental by period: a nightly build recomputes only the periods whose rows can
-- have changed (recomputed_day_ranges_query below) and replaces them whole, so it costs in
-- proportion to the periods that new data touches, not to the history. Every
-- recomputed period has an organisation BACKLOG row, so a period whose observations
-- all moved away is still replaced. The KPI marts read from it equal those of a full
-- refresh (tests/test_incremental.py).
{%- set dimensions = kpi_dimensions() %}
{%- set dimension_list -%}
    {%- for _, column in dimensions %}{{ column }}{{ ", " if not loop.last }}{% endfor -%}
{%- endset %}
{%- set horizon_working_days = kpi_horizon_working_days() %}
{%- set grains = ['day', 'week', 'month'] %}
{%- set observation_slots = kpi_observation_slots() %}

{#- The days this build recomputes and the as-of moment, from the period finder
    (macros/kpi_period_finder.sql), as constants. -#}
{%- set as_of_cte = kpi_as_of_and_calendar(horizon_working_days) %}
{%- set found = kpi_periods_to_recompute(horizon_working_days,
                                         this if is_incremental() else none) %}
{%- set day_ranges = found.day_ranges %}
{%- set data_as_of_local, day_before_as_of = found.data_as_of_local, found.day_before_as_of %}
{%- set first_recomputed_day, last_recomputed_day = found.first_day, found.last_day %}

with {{ as_of_cte }},

{{ kpi_recomputed_periods_ctes(day_ranges) }},

{#- The observations of the recomputed days. Not a CTE, which DuckDB would hold whole
    in memory; materialised_rows (macros/planner_statistics.sql) gives PostgreSQL an
    analysed temporary table of them instead (with the view's guessed sizes it sorted
    every observation once per grouping set rather than hashing them), and DuckDB the
    subquery. -#}
{%- set observations -%}
    (
    select
        cast(observed_at_local as date) as observed_on,
        kpi_id_1,
        {%- for slot in observation_slots %}
        {{ kpi_exact_term('numerator_' ~ slot) }} as numerator_{{ slot }},
        {{ kpi_exact_term('denominator_' ~ slot) }} as denominator_{{ slot }},
        {%- endfor %}
        {{ dimension_list }}
    from {{ ref('int_kpi_observations_unioned') }}
    where {{ kpi_observed_in_recomputed_days(found) }}
    )
{%- endset %}
{%- set observations = materialised_rows('kpi_observations_to_aggregate', observations) %}

-- The numerators and denominators are summed exactly (kpi_exact_term, kpi_exact_sum:
-- each observation at 6 decimal places, summed as a decimal) up to the weeks and months, and only then
-- made doubles: the order in which DuckDB's threads or PostgreSQL add the rows cannot
-- change a digit, so a re-run gives the same KPI values on both (a float sum once
-- gave TPS 21.800000000000004 for 21.8). The KPI marts divide them once.
-- Grouped by the first slot's KPI alone, which names the others
-- (kpi_observation_sets()): grouping by all four names cost more than the slots saved.
day_slot_sums as (
    select
        observed_on as period_start,
        kpi_id_1,
        {{ slice_columns() }},
        {%- for slot in observation_slots %}
        {{ kpi_exact_sum('numerator_' ~ slot) }} as numerator_{{ slot }},
        {{ kpi_exact_sum('denominator_' ~ slot) }} as denominator_{{ slot }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ observations }} as observations
    {{ slice_grouping_sets('observed_on, kpi_id_1') }}
),

-- One row per KPI again; a slot no observation of a group filled has no denominator.
-- A KPI observed in two kinds of rows (CMP_RATE: tickets and complaints) adds up.
day_sums as (
    select period_start, kpi_id, dimension, dimension_value,
           sum(numerator) as numerator, sum(denominator) as denominator
    from (
        {%- for slot in observation_slots %}
        select period_start, {{ observed_kpi_id(slot, 'kpi_id_1') }} as kpi_id,
               dimension, dimension_value,
               numerator_{{ slot }} as numerator, denominator_{{ slot }} as denominator
        from day_slot_sums
        where denominator_{{ slot }} is not null
        {{- "\n        union all" if not loop.last }}
        {%- endfor %}
    ) as slots
    group by period_start, kpi_id, dimension, dimension_value
),

period_sums as (
    select 'day' as period_grain, period_start, kpi_id, dimension, dimension_value,
           numerator, denominator
    from day_sums
    {%- for grain, column in [('week', 'iso_week_start'), ('month', 'month_start')] %}
    union all
    select '{{ grain }}', calendar.{{ column }}, day_sums.kpi_id, day_sums.dimension,
           day_sums.dimension_value, sum(day_sums.numerator), sum(day_sums.denominator)
    from day_sums
    inner join calendar
        on day_sums.period_start = calendar.calendar_date
    where calendar.{{ column }} in (
        select period_start from recomputed_periods where period_grain = '{{ grain }}')
    group by 2, 3, 4, 5
    {%- endfor %}
),

-- Stocks: BACKLOG, the items open when measured (opened before, not resolved by
-- then), and its ageing buckets by age at that moment: < 1 day, 1-3, 3-5 (5
-- included), > 5. A day is measured at its end, the as-of moment's day at that
-- moment; a week or month takes the stocks of its last measured day, and periods
-- after the as-of moment's have none. Counting the open items of every day one by
-- one would cost days x backlog, which grows with the history when some items are
-- never closed; so a day's backlog is the running sum of openings and closings, and
-- only the items opened in the 5 days before a day's end are counted one by one for
-- the younger buckets (the oldest bucket is the rest).
{#- Read by each step below with its own bounds (not one shared CTE, which would be
    materialised whole). -#}
{%- set backlog_items -%}
    (
    select
        opened_at_local,
        cast(opened_at_local as date) as opened_on,
        -- From the end of this day on, the item is no longer open.
        cast(closed_at_local - interval '1 microsecond' as date) as closed_on,
        closed_at_local,
        {{ dimension_list }}
    from {{ ref('int_backlog_items_unioned') }}
    where closed_at_local is null or closed_at_local > opened_at_local
    )
{%- endset %}
{#- The days measured at their end: each range of recomputed days, up to the day
    before the as-of moment's. Each range is summed on its own, from the items open
    when it starts: bounds of its own, which PostgreSQL reads by the facts' indexes on
    when items opened and closed, so a night that recomputes the first and the last
    month reads those months' items and the open ones, not the years between. -#}
{%- set stock_ranges = [] %}
{%- for first_day, last_day in day_ranges %}
    {%- set first = (first_day | string)[:10] %}
    {%- set last = [(last_day | string)[:10], day_before_as_of] | reject('none') | min %}
    {%- if first <= last %}
        {%- do stock_ranges.append((first, last)) %}
    {%- endif %}
{%- endfor %}

stock_ranges as (
    {%- for first, last in stock_ranges %}
    select {{ loop.index }} as stock_range, {{ typed_literal(first, 'date') }} as first_day,
           {{ typed_literal(last, 'date') }} as last_day
    {{- "\n    union all" if not loop.last }}
    {%- else %}
    select 0 as stock_range, cast(null as date) as first_day, cast(null as date) as last_day
    from as_of
    where false
    {%- endfor %}
),

-- Per range: the items open when it starts, then each day's openings and closings (an
-- item closed on day D, after the range's start, is open no more from D's end:
-- closed_on).
backlog_changes as (
    {%- for first, last in stock_ranges %}
    {%- set starts = typed_literal(first, 'timestamp') %}
    {%- set ends = "(" ~ typed_literal(last, 'timestamp') ~ " + interval '1 day')" %}
    select {{ loop.index }} as stock_range, {{ typed_literal(first, 'date') }} as changed_on,
           1 as change, {{ dimension_columns(relation='items') }}
    from {{ backlog_items }} as items
    where items.opened_at_local < {{ starts }}
        and (items.closed_at_local is null or items.closed_at_local > {{ starts }})
    union all
    select {{ loop.index }}, items.opened_on, 1, {{ dimension_columns(relation='items') }}
    from {{ backlog_items }} as items
    where items.opened_at_local >= {{ starts }}
        and items.opened_at_local < {{ ends }}
    union all
    select {{ loop.index }}, items.closed_on, -1, {{ dimension_columns(relation='items') }}
    from {{ backlog_items }} as items
    where items.closed_at_local > {{ starts }}
        and items.closed_at_local <= {{ ends }}
    {{- "\n    union all" if not loop.last }}
    {%- else %}
    select 0 as stock_range, cast(null as date) as changed_on, 0 as change,
           {{ dimension_columns(relation='items') }}
    from {{ backlog_items }} as items
    where false
    {%- endfor %}
),

daily_backlog_changes as (
    select
        stock_range,
        changed_on,
        {{ slice_columns() }},
        sum(change) as change
    from backlog_changes
    {{ slice_grouping_sets('stock_range, changed_on') }}
),

daily_backlog as (
    select
        days.calendar_date as measured_on,
        slices.dimension,
        slices.dimension_value,
        sum(coalesce(changes.change, 0)) over (
            partition by slices.stock_range, slices.dimension, slices.dimension_value
            order by days.calendar_date
            rows between unbounded preceding and current row
        ) as open_items
    from stock_ranges
    inner join calendar as days
        on days.calendar_date between stock_ranges.first_day and stock_ranges.last_day
    inner join (select distinct stock_range, dimension, dimension_value
                from daily_backlog_changes) as slices
        on slices.stock_range = stock_ranges.stock_range
    left join daily_backlog_changes as changes
        on changes.stock_range = slices.stock_range
        and changes.changed_on = days.calendar_date
        and changes.dimension = slices.dimension
        and changes.dimension_value = slices.dimension_value
),

-- Open items counted one by one, with their age: those opened in the 5 days before
-- a measured day's end, and every item open at the as-of moment.
counted_backlog as (
    select
        candidates.measured_on,
        {{ days_between('candidates.opened_at_local',
                        "cast(candidates.measured_on + interval '1 day' as timestamp)") }} as age_days,
        {{ dimension_columns(relation='candidates') }}
    from (
        select items.*, items.opened_on + offsets.days_after as measured_on
        from {{ backlog_items }} as items
        cross join (
            select 0 as days_after union all select 1 union all select 2
            union all select 3 union all select 4
        ) as offsets
        -- Still open at the end of its first day, and young in a range.
        where (items.closed_on is null or items.closed_on > items.opened_on)
            and (false
            {%- for first, last in stock_ranges %}
                or (items.opened_at_local >= {{ typed_literal(first, 'timestamp') }} - interval '4 day'
                    and items.opened_at_local < {{ typed_literal(last, 'timestamp') }} + interval '1 day')
            {%- endfor %})
    ) as candidates
    where {{ day_in_ranges('candidates.measured_on', stock_ranges) }}
        and (candidates.closed_on is null or candidates.closed_on > candidates.measured_on)

    union all
    select
        as_of.as_of_date,
        {{ days_between('items.opened_at_local', 'as_of.data_as_of_local') }},
        {{ dimension_columns(relation='items') }}
    from {{ backlog_items }} as items
    cross join as_of
    where as_of.as_of_date in (select calendar_date from recomputed_days)
        and items.opened_at_local < {{ typed_literal(data_as_of_local, 'timestamp') }}
        and (items.closed_at_local is null
             or items.closed_at_local > {{ typed_literal(data_as_of_local, 'timestamp') }})
),

counted_stocks as (
    select
        measured_on,
        kpi_id,
        {{ slice_columns() }},
        cast(count(*) as double precision) as open_items
    from (
        select measured_on,
               case when age_days < 1 then 'BACKLOG_AGE_LT_1D'
                    when age_days < 3 then 'BACKLOG_AGE_1_3D'
                    when age_days <= 5 then 'BACKLOG_AGE_3_5D'
                    else 'BACKLOG_AGE_GT_5D' end as kpi_id,
               {{ dimension_list }}
        from counted_backlog
        union all
        select counted_backlog.measured_on, 'BACKLOG', {{ dimension_columns(relation='counted_backlog') }}
        from counted_backlog
        cross join as_of
        where counted_backlog.measured_on = as_of.as_of_date
    ) as counted
    {{ slice_grouping_sets('measured_on, kpi_id') }}
),

day_stocks as (
    select measured_on, 'BACKLOG' as kpi_id, dimension, dimension_value,
           cast(open_items as double precision) as open_items
    from daily_backlog
    union all
    select measured_on, kpi_id, dimension, dimension_value, open_items
    from counted_stocks
    union all
    select
        daily_backlog.measured_on,
        'BACKLOG_AGE_GT_5D',
        daily_backlog.dimension,
        daily_backlog.dimension_value,
        daily_backlog.open_items - coalesce(younger.open_items, 0)
    from daily_backlog
    left join (
        select measured_on, dimension, dimension_value, sum(open_items) as open_items
        from counted_stocks
        where kpi_id <> 'BACKLOG'
        group by measured_on, dimension, dimension_value
    ) as younger
        on daily_backlog.measured_on = younger.measured_on
        and daily_backlog.dimension = younger.dimension
        and daily_backlog.dimension_value = younger.dimension_value
),

measured_periods as (
    select
        recomputed_periods.period_grain,
        recomputed_periods.period_start,
        least(
            cast(case recomputed_periods.period_grain
            {%- for grain in grains %}
                when '{{ grain }}' then recomputed_periods.period_start + {{ period_step(grain) }} - interval '1 day'
            {%- endfor %}
            end as date),
            as_of.as_of_date
        ) as measured_on
    from recomputed_periods
    cross join as_of
    where recomputed_periods.period_start <= as_of.as_of_date
),

stocks as (
    select
        measured_periods.period_grain,
        measured_periods.period_start,
        day_stocks.kpi_id,
        day_stocks.dimension,
        day_stocks.dimension_value,
        day_stocks.open_items
    from measured_periods
    inner join day_stocks
        on measured_periods.measured_on = day_stocks.measured_on
    where day_stocks.open_items > 0
        and not (day_stocks.kpi_id = 'BACKLOG' and day_stocks.dimension = 'organisation')

    -- Every recomputed period's organisation BACKLOG, 0 when nothing is open or the
    -- period is not measured yet: the row that marks the period as rebuilt.
    union all
    select
        recomputed_periods.period_grain,
        recomputed_periods.period_start,
        'BACKLOG',
        'organisation',
        'all',
        coalesce(day_stocks.open_items, 0)
    from recomputed_periods
    left join measured_periods
        on recomputed_periods.period_grain = measured_periods.period_grain
        and recomputed_periods.period_start = measured_periods.period_start
    left join day_stocks
        on measured_periods.measured_on = day_stocks.measured_on
        and day_stocks.kpi_id = 'BACKLOG'
        and day_stocks.dimension = 'organisation'
),

-- The flows' exact sums made doubles, and the stocks (a count is its own numerator and
-- denominator).
aggregated as (
    select period_grain, period_start, kpi_id, dimension, dimension_value,
           cast(numerator as double precision) as numerator,
           cast(denominator as double precision) as denominator
    from period_sums
    union all
    select period_grain, period_start, kpi_id, dimension, dimension_value,
           open_items, open_items
    from stocks
),

{{ kpi_period_rows('aggregated', ['numerator', 'denominator']) }}
