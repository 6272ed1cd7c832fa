{{ config(materialized='incremental', unique_key='response_id', incremental_strategy='delete+insert',
          on_schema_change='fail') }}
-- A table, not a view: the facts, their tests and the data's as-of moment read the
-- latest versions several times, and ranking every version of a large source each
-- time cost more than the rest of the build (latest_version: incremental by key).
with latest as (
    {{ latest_version(source('surveys', 'survey_responses'), 'response_id') }}
)

select
    response_id,
    ticket_id,
    complaint_id,
    customer_id,
    sent_at,
    answered_at,
    -- SURVEY_RESPONSE counts a survey in the period it was sent, the others in the
    -- period it was answered.
    {{ to_reporting_tz('sent_at') }} as sent_at_local,
    {{ to_reporting_tz('answered_at') }} as answered_at_local,
    cast(satisfaction as integer) as satisfaction,
    cast(nps_score as integer) as nps_score,
    cast(attitude_score as integer) as attitude_score,
    cast(speed_score as integer) as speed_score,
    cast(professionalism_score as integer) as professionalism_score,
    -- Free text may hold personal data; marts and reports never select it.
    comment as comment_text,
    updated_at,
    -- When the warehouse received this version: incremental facts pick up changes by it.
    _loaded_at as loaded_at,
    {{ build_started_at() }} as built_at
from latest
