-- Grain: one row per (complaint, process step it is subject to): its deadline, when it
-- was done, and whether it met the deadline, decided at the data's as-of moment.
-- The one definition of the complaint-step KPIs (int_kpi_observations_unioned sums
-- is_met over decided rows) and of the breach list (fct_complaint_step_breaches), so a
-- report's breach count always equals its KPI tile's misses.
--
-- Minute deadlines (classify, dispatch, solution) are instants and lateness is elapsed
-- time (unknown where only the system's own verdict on the step is recorded); working-day deadlines (close, callback) end with their local deadline day.
-- Lateness is elapsed time between instants for every step: between local wall times
-- it would be an hour off across a daylight-saving change (resolved_at_local goes back
-- to an instant; only inside the hour a zone repeats is that ambiguous).
-- anchored_at_local is the moment that decides the KPI's period (catalogue
-- attribution rules): receipt, or resolution for the callback.
{#- Each step reads the complaints through its own subquery, not a shared CTE (see
    fact_with_as_of). -#}
{%- set complaints = fact_with_as_of(ref('fct_complaints')) %}
with as_of as (
    select * from {{ ref('int_changes_summarised') }}
),

steps as (
    select complaint_id, 'classify' as step, 'STEP_CLASSIFY_30M' as kpi_id,
           received_at_local as anchored_at_local,
           {{ to_reporting_tz('classify_due_at') }} as due_at_local,
           {{ to_reporting_tz('classified_at') }} as done_at_local,
           is_classified_in_30_minutes as is_met,
           {{ outcome_known('(classified_at is not null or classified_in_time is not null)', 'classify_due_at', 'data_as_of') }}
               as is_outcome_known,
           case when classified_at is null and classified_in_time is not null then null else
               {{ minutes_between('classify_due_at', 'coalesce(classified_at, data_as_of)') }} end
               as minutes_past_due,
           {{ dimension_columns() }}
    from {{ complaints }} as complaints

    union all
    select complaint_id, 'dispatch', 'STEP_DISPATCH_1H', received_at_local,
           {{ to_reporting_tz('dispatch_due_at') }}, {{ to_reporting_tz('dispatched_at') }},
           is_dispatched_in_1_hour,
           {{ outcome_known('(dispatched_at is not null or dispatched_in_time is not null)', 'dispatch_due_at', 'data_as_of') }},
           case when dispatched_at is null and dispatched_in_time is not null then null else
               {{ minutes_between('dispatch_due_at', 'coalesce(dispatched_at, data_as_of)') }} end,
           {{ dimension_columns() }}
    from {{ complaints }} as complaints

    union all
    select complaint_id, 'solution', 'CMP_SOLUTION_24H', received_at_local,
           {{ to_reporting_tz('solution_due_at') }}, {{ to_reporting_tz('solution_at') }},
           has_solution_in_24_hours,
           {{ outcome_known('(solution_at is not null or solution_in_time is not null)', 'solution_due_at', 'data_as_of') }},
           case when solution_at is null and solution_in_time is not null then null else
               {{ minutes_between('solution_due_at', 'coalesce(solution_at, data_as_of)') }} end,
           {{ dimension_columns() }}
    from {{ complaints }} as complaints

    union all
    select complaint_id, 'close', 'CMP_CLOSE_5WD', received_at_local,
           cast(close_deadline_date + interval '1 day' as timestamp), resolved_at_local,
           is_closed_by_deadline,
           {{ outcome_known('is_resolved', "close_deadline_date + interval '1 day'", 'data_as_of_local') }},
           {{ minutes_between(from_reporting_tz("cast(close_deadline_date + interval '1 day' as timestamp)"),
                              'coalesce(' ~ from_reporting_tz('resolved_at_local') ~ ', data_as_of)') }},
           {{ dimension_columns() }}
    from {{ complaints }} as complaints

    union all
    select complaint_id, 'callback', 'CALLBACK_2WD', resolved_at_local,
           cast(callback_deadline_date + interval '1 day' as timestamp), callback_at_local,
           is_called_back_by_deadline,
           {{ outcome_known('callback_at is not null', "callback_deadline_date + interval '1 day'", 'data_as_of_local') }},
           {{ minutes_between(from_reporting_tz("cast(callback_deadline_date + interval '1 day' as timestamp)"),
                              'coalesce(callback_at, data_as_of)') }},
           {{ dimension_columns() }}
    from {{ complaints }} as complaints
    where is_resolved

    -- An urgent complaint must be escalated; it has no clock, so no lateness.
    union all
    select complaint_id, 'escalate', 'STEP_ESCALATION', received_at_local,
           cast(null as timestamp), cast(null as timestamp),
           is_escalated, true, cast(null as double precision),
           {{ dimension_columns() }}
    from {{ complaints }} as complaints
    where severity = 'urgent'
)

select * from steps
