-- A survey response belongs to the department that handled what it rates: the
-- ticket's department, or the complaint's when it rates a complaint.
select
    responses.response_id,
    responses.ticket_id,
    responses.complaint_id,
    responses.customer_id,
    coalesce(tickets.department, complaints.department) as department,
    tickets.agent_id,
    responses.sent_at,
    responses.answered_at,
    responses.answered_at_local,
    responses.satisfaction,
    responses.nps_score,
    responses.attitude_score,
    responses.speed_score,
    responses.professionalism_score
from {{ ref('stg_surveys__survey_responses') }} as responses
left join {{ ref('stg_crm__tickets') }} as tickets
    on responses.ticket_id = tickets.ticket_id
left join {{ ref('stg_complaints__complaints') }} as complaints
    on responses.complaint_id = complaints.complaint_id
