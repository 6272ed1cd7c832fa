-- Grain: one row per survey response (latest version). No free text: comments may
-- hold personal data and stay in staging.
select
    response_id,
    ticket_id,
    complaint_id,
    customer_id,
    department,
    agent_id,
    sent_at,
    answered_at_local,
    answered_at is not null as is_answered,
    satisfaction,
    satisfaction >= 4 as is_satisfied,
    (satisfaction - 1) / 4.0 * 100 as satisfaction_index_points,
    nps_score,
    case
        when nps_score >= 9 then 'promoter'
        when nps_score <= 6 then 'detractor'
        when nps_score is not null then 'passive'
    end as nps_group
from {{ ref('int_survey_responses_attributed') }}
