-- The weekly KPI table by every dimension of the catalogue, written directly against
-- the raw tables in one DuckDB query: the yardstick `make bench` holds the dbt build
-- against (kpi_weekly holds every dimension). The same KPIs as weekly_kpis_by_hand.sql
-- (the flow KPIs that need no business calendar: ratios, means, NPS, median and P90
-- response times), for the organisation and each value of every dimension: a ticket's
-- own, its customer's, a complaint's ticket's, a survey's ticket's or complaint's.
with tickets as (
    select * exclude (rank_) from (
        select *, row_number() over (partition by ticket_id
            order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc) as rank_
        from raw.crm_tickets) where rank_ = 1
),
customers as (
    select * exclude (rank_) from (
        select *, row_number() over (partition by customer_id
            order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc) as rank_
        from raw.crm_customers) where rank_ = 1
),
complaints as (
    select * exclude (rank_) from (
        select *, row_number() over (partition by complaint_id
            order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc) as rank_
        from raw.complaints) where rank_ = 1
),
surveys as (
    select * exclude (rank_) from (
        select *, row_number() over (partition by response_id
            order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc) as rank_
        from raw.survey_responses) where rank_ = 1
),
t as (
    select tickets.*, customers.customer_type, customers.service_level, customers.region
    from tickets left join customers using (customer_id)
),
c as (
    select complaints.*, complaints.category as complaint_category, t.agent_id, t.channel, t.service_type,
           complaints.severity as priority, customers.customer_type, customers.service_level, customers.region
    from complaints left join t using (ticket_id) left join customers on complaints.customer_id = customers.customer_id
),
s as (
    select surveys.answered_at, surveys.satisfaction, surveys.nps_score,
           coalesce(t.department, c.department) as department, coalesce(t.agent_id, c.agent_id) as agent_id,
           coalesce(t.channel, c.channel) as channel, coalesce(t.service_type, c.service_type) as service_type,
           customers.customer_type, customers.service_level, customers.region, c.complaint_category,
           coalesce(t.priority, c.priority) as priority
    from surveys
    left join t using (ticket_id)
    left join c on surveys.complaint_id = c.complaint_id
    left join customers on surveys.customer_id = customers.customer_id
),
observations as (
    select 'RESP_SLA' as kpi_id, created_at as observed_at,
           case when first_response_at <= created_at + interval 30 minute then 1.0 else 0.0 end as num,
           1.0 as den, null::double as measure,
           department, agent_id, channel, service_type, customer_type, service_level, region, null as complaint_category, priority
    from t
    union all
    select 'FRT', created_at, null, 1.0, (epoch_us(first_response_at) - epoch_us(created_at)) / 60000000.0,
           department, agent_id, channel, service_type, customer_type, service_level, region, null, priority
    from t where first_response_at is not null
    union all
    select 'FCR', resolved_at, case when contacts_to_resolve = 1 then 1.0 else 0.0 end, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, null, priority
    from t where resolved_at is not null
    union all
    select 'AHT', resolved_at, handle_seconds, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, null, priority
    from t where resolved_at is not null and handle_seconds is not null
    union all
    select 'CMP_RATE', created_at, 0.0, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, null, priority
    from t
    union all
    select 'CMP_RATE', received_at, 1.0, 0.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from c
    union all
    select 'CMP_SOLUTION_24H', received_at,
           case when solution_at <= received_at + interval 24 hour then 1.0 else 0.0 end, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from c
    union all
    select 'STEP_CLASSIFY_30M', received_at,
           case when classified_at <= received_at + interval 30 minute then 1.0 else 0.0 end, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from c
    union all
    select kpi_id, answered_at, num, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from s
    cross join lateral (values
        ('CSAT', case when s.satisfaction >= 4 then 1.0 else 0.0 end),
        ('CSI', (s.satisfaction - 1) / 4.0 * 100)
    ) as kpis(kpi_id, num)
    where s.answered_at is not null and s.satisfaction is not null
    union all
    select 'NPS', answered_at,
           case when nps_score >= 9 then 1.0 when nps_score <= 6 then -1.0 else 0.0 end, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from s where answered_at is not null and nps_score is not null
),
weekly as (
    select date_trunc('week', timezone('Asia/Shanghai', observed_at))::date as period_start, *
    from observations where observed_at is not null
)
select period_start, kpi_id, dimension, slice, value, median_measure, p90_measure
from (
    select period_start, kpi_id,
           case
                when grouping(department) = 0 then 'department'
                when grouping(agent_id) = 0 then 'agent'
                when grouping(channel) = 0 then 'channel'
                when grouping(service_type) = 0 then 'service_type'
                when grouping(customer_type) = 0 then 'customer_type'
                when grouping(service_level) = 0 then 'service_level'
                when grouping(region) = 0 then 'region'
                when grouping(complaint_category) = 0 then 'complaint_category'
                when grouping(priority) = 0 then 'priority'
                else 'organisation'
           end as dimension,
           case
                when grouping(department) = 0 then department
                when grouping(agent_id) = 0 then agent_id
                when grouping(channel) = 0 then channel
                when grouping(service_type) = 0 then service_type
                when grouping(customer_type) = 0 then customer_type
                when grouping(service_level) = 0 then service_level
                when grouping(region) = 0 then region
                when grouping(complaint_category) = 0 then complaint_category
                when grouping(priority) = 0 then priority
                else 'all'
           end as slice,
           sum(num) / nullif(sum(den), 0) as value,
           percentile_cont(0.5) within group (order by measure) as median_measure,
           percentile_cont(0.9) within group (order by measure) as p90_measure
    from weekly
    group by grouping sets (
    (period_start, kpi_id),
    (period_start, kpi_id, department),
    (period_start, kpi_id, agent_id),
    (period_start, kpi_id, channel),
    (period_start, kpi_id, service_type),
    (period_start, kpi_id, customer_type),
    (period_start, kpi_id, service_level),
    (period_start, kpi_id, region),
    (period_start, kpi_id, complaint_category),
    (period_start, kpi_id, priority)
    )
) as weekly_kpis
where slice is not null
