-- The PostgreSQL translation of weekly_kpis_every_dimension_by_hand.sql: the weekly KPI
-- table by every dimension of the catalogue, written directly against the raw tables in
-- one query, the yardstick `make bench` holds the PostgreSQL dbt build against. The same
-- structure, KPIs and result rows (columns, grain, values) as the DuckDB query; what
-- differs is only what PostgreSQL syntax and semantics require:
-- * `select * exclude (rank_)` → a subquery that keeps only the columns the query uses
--   (the same latest version per key); PostgreSQL 15 also needs the subquery's alias.
-- * the version order spells out DuckDB's defaults: `nulls last` (PostgreSQL puts nulls
--   first in a descending order) and byte order for _source_file (`collate "C"`), so the
--   same version wins whatever the database's collation.
-- * `interval 30 minute` → `interval '30 minutes'`; `null::double` → `null::double precision`;
--   the first branch's untyped `null as complaint_category` → `null::varchar`.
-- * `epoch_us(b) - epoch_us(a)` → the microseconds between them from extract(epoch ...)
--   (exact numeric); and a bigint divided by a decimal is a double in DuckDB but a numeric
--   in PostgreSQL, so such divisions (FRT's minutes, CSI) cast to double precision first,
--   as DuckDB computes them: num, measure, value and the percentiles stay doubles.
-- * `timezone('Asia/Shanghai', observed_at)` → `observed_at at time zone 'Asia/Shanghai'`
--   (a timestamptz to the reporting zone's wall-clock time, whatever the session's zone),
--   then the same Monday `date_trunc('week', ...)` and cast to date.
with tickets as (
    select ticket_id, customer_id, department, agent_id, channel, service_type, priority,
           created_at, first_response_at, resolved_at, contacts_to_resolve, handle_seconds
    from (
        select ticket_id, customer_id, department, agent_id, channel, service_type, priority,
               created_at, first_response_at, resolved_at, contacts_to_resolve, handle_seconds,
               row_number() over (partition by ticket_id
                   order by updated_at desc nulls last, _loaded_at desc nulls last,
                            _source_file collate "C" desc nulls last, _source_row desc nulls last) as rank_
        from raw.crm_tickets) as versions where rank_ = 1
),
customers as (
    select customer_id, customer_type, service_level, region
    from (
        select customer_id, customer_type, service_level, region,
               row_number() over (partition by customer_id
                   order by updated_at desc nulls last, _loaded_at desc nulls last,
                            _source_file collate "C" desc nulls last, _source_row desc nulls last) as rank_
        from raw.crm_customers) as versions where rank_ = 1
),
complaints as (
    select complaint_id, ticket_id, customer_id, category, severity, department,
           received_at, classified_at, solution_at
    from (
        select complaint_id, ticket_id, customer_id, category, severity, department,
               received_at, classified_at, solution_at,
               row_number() over (partition by complaint_id
                   order by updated_at desc nulls last, _loaded_at desc nulls last,
                            _source_file collate "C" desc nulls last, _source_row desc nulls last) as rank_
        from raw.complaints) as versions where rank_ = 1
),
surveys as (
    select response_id, ticket_id, complaint_id, customer_id, answered_at, satisfaction, nps_score
    from (
        select response_id, ticket_id, complaint_id, customer_id, answered_at, satisfaction, nps_score,
               row_number() over (partition by response_id
                   order by updated_at desc nulls last, _loaded_at desc nulls last,
                            _source_file collate "C" desc nulls last, _source_row desc nulls last) as rank_
        from raw.survey_responses) as versions where rank_ = 1
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
           (case when first_response_at <= created_at + interval '30 minutes' then 1.0 else 0.0 end)::double precision as num,
           1.0 as den, null::double precision as measure,
           department, agent_id, channel, service_type, customer_type, service_level, region,
           null::varchar as complaint_category, priority
    from t
    union all
    select 'FRT', created_at, null, 1.0,
           ((extract(epoch from first_response_at) - extract(epoch from created_at)) * 1000000)::double precision / 60000000.0,
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
           case when solution_at <= received_at + interval '24 hours' then 1.0 else 0.0 end, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from c
    union all
    select 'STEP_CLASSIFY_30M', received_at,
           case when classified_at <= received_at + interval '30 minutes' then 1.0 else 0.0 end, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from c
    union all
    select kpi_id, answered_at, num, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from s
    cross join lateral (values
        ('CSAT', case when s.satisfaction >= 4 then 1.0 else 0.0 end),
        ('CSI', (s.satisfaction - 1)::double precision / 4.0 * 100)
    ) as kpis(kpi_id, num)
    where s.answered_at is not null and s.satisfaction is not null
    union all
    select 'NPS', answered_at,
           case when nps_score >= 9 then 1.0 when nps_score <= 6 then -1.0 else 0.0 end, 1.0, null,
           department, agent_id, channel, service_type, customer_type, service_level, region, complaint_category, priority
    from s where answered_at is not null and nps_score is not null
),
weekly as (
    select date_trunc('week', observed_at at time zone 'Asia/Shanghai')::date as period_start, *
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
