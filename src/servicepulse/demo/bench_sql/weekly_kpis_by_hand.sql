-- The weekly KPI table written directly against the raw tables in one DuckDB query:
-- the yardstick `make bench` holds the dbt build against. Latest version per key,
-- local ISO weeks, organisation and departments, the flow KPIs of kpi_weekly that
-- need no business calendar (ratios, means, NPS, median and P90 response times).
with tickets as (
    select * exclude (rank_) from (
        select *, row_number() over (partition by ticket_id
            order by updated_at desc, _loaded_at desc, _source_file desc, _source_row desc) as rank_
        from raw.crm_tickets) where rank_ = 1
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
observations as (
    select 'RESP_SLA' as kpi_id, created_at as observed_at, department,
           case when first_response_at <= created_at + interval 30 minute then 1.0 else 0.0 end as num,
           1.0 as den, null::double as measure
    from tickets
    union all
    select 'FRT', created_at, department, null, 1.0,
           (epoch_us(first_response_at) - epoch_us(created_at)) / 60000000.0
    from tickets where first_response_at is not null
    union all
    select 'FCR', resolved_at, department, case when contacts_to_resolve = 1 then 1.0 else 0.0 end,
           1.0, null
    from tickets where resolved_at is not null
    union all
    select 'AHT', resolved_at, department, handle_seconds, 1.0, null
    from tickets where resolved_at is not null and handle_seconds is not null
    union all
    select 'CMP_RATE', created_at, department, 0.0, 1.0, null from tickets
    union all
    select 'CMP_RATE', received_at, department, 1.0, 0.0, null from complaints
    union all
    select 'CMP_SOLUTION_24H', received_at, department,
           case when solution_at <= received_at + interval 24 hour then 1.0 else 0.0 end, 1.0, null
    from complaints
    union all
    select 'STEP_CLASSIFY_30M', received_at, department,
           case when classified_at <= received_at + interval 30 minute then 1.0 else 0.0 end, 1.0, null
    from complaints
    union all
    select kpi_id, s.answered_at, coalesce(t.department, c.department), num, 1.0, null
    from surveys as s
    left join tickets as t using (ticket_id)
    left join complaints as c using (complaint_id)
    cross join lateral (values
        ('CSAT', case when s.satisfaction >= 4 then 1.0 else 0.0 end),
        ('CSI', (s.satisfaction - 1) / 4.0 * 100)
    ) as kpis(kpi_id, num)
    where s.answered_at is not null and s.satisfaction is not null
    union all
    select 'NPS', s.answered_at, coalesce(t.department, c.department),
           case when s.nps_score >= 9 then 1.0 when s.nps_score <= 6 then -1.0 else 0.0 end,
           1.0, null
    from surveys as s
    left join tickets as t using (ticket_id)
    left join complaints as c using (complaint_id)
    where s.answered_at is not null and s.nps_score is not null
),
weekly as (
    select date_trunc('week', timezone('Asia/Shanghai', observed_at))::date as period_start,
           kpi_id, department, num, den, measure
    from observations where observed_at is not null
)
select period_start, kpi_id, coalesce(department, 'all') as slice,
       sum(num) / nullif(sum(den), 0) as value,
       percentile_cont(0.5) within group (order by measure) as median_measure,
       percentile_cont(0.9) within group (order by measure) as p90_measure
from weekly
group by grouping sets ((period_start, kpi_id), (period_start, kpi_id, department))
