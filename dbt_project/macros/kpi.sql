{#- The value of a KPI from its aggregated observations, by the KPI's kind. A KPI
    with nothing to measure is null, never 0; a count (a stock) or a total (a volume,
    such as the tickets created) of nothing is 0. -#}
{% macro kpi_value(kind, numerator, denominator, median_measure, p90_measure) -%}
    case
        when {{ kind }} = 'count' then coalesce({{ numerator }}, 0)
        when {{ kind }} = 'total' then coalesce({{ numerator }}, 0)
        when coalesce({{ denominator }}, 0) = 0 then null
        when {{ kind }} in ('ratio', 'mean') then {{ numerator }} / {{ denominator }}
        when {{ kind }} = 'nps' then 100.0 * {{ numerator }} / {{ denominator }}
        when {{ kind }} = 'median' then {{ median_measure }}
        when {{ kind }} = 'p90' then {{ p90_measure }}
    end
{%- endmacro %}

{#- The sum of a KPI's observations (a numerator or a denominator), exact: each
    observation taken at 6 decimal places (the precision of every KPI's inputs; an
    audit's score has 1, the other observations are whole numbers) and summed as a
    decimal, whose sum does not depend on the order the rows are added in. A float sum
    does: DuckDB adds in parallel, in an order that changes between runs, and a re-run
    moved a value in its 15th digit (TPS 21.8 -> 21.800000000000004). Sums of these
    sums (weeks, months) are exact too. An observation of 10^12 or more fails the
    build (numeric overflow), never rounds silently. -#}
{#- An observation as kpi_exact_sum adds it, computed once per row where the
    observations are read (not in the aggregate, which a grouping-sets aggregation
    evaluates again for every grouping set). On PostgreSQL it is the decimal in
    millionths as a bigint: PostgreSQL adds bigints in 128-bit integers, and its
    arbitrary-precision numeric sums of 4.7M observations in ten grouping sets took
    65 of the KPI aggregate's 100 s at 1M tickets. The same digits either way. -#}
{% macro kpi_exact_term(expression) -%}
    {{ return(adapter.dispatch('kpi_exact_term')(expression)) }}
{%- endmacro %}

{% macro default__kpi_exact_term(expression) -%}
    cast({{ expression }} as decimal(18, 6))
{%- endmacro %}

{#- A whole number (most observations: counts, seconds) goes to bigint directly:
    PostgreSQL turns a double into a decimal through its text, which cost 6 of the 16 s
    the 1M set's 4.7M observations took to compute. Exactly the same millionths: a
    double that is a whole number below 10^12 has at most 12 digits. Anything else
    (a fraction, 10^12 or more, NaN, infinity) takes the decimal as before, and fails
    the build where that fails. -#}
{% macro postgres__kpi_exact_term(expression) -%}
    case when {{ expression }} = trunc({{ expression }}) and abs({{ expression }}) < 1e12
         then cast({{ expression }} as bigint) * 1000000
         else cast(cast({{ expression }} as decimal(18, 6)) * 1000000 as bigint) end
{%- endmacro %}

{#- The exact sum of terms made by kpi_exact_term, as a decimal. -#}
{% macro kpi_exact_sum(term) -%}
    {{ return(adapter.dispatch('kpi_exact_sum')(term)) }}
{%- endmacro %}

{% macro default__kpi_exact_sum(term) -%}
    sum({{ term }})
{%- endmacro %}

{% macro postgres__kpi_exact_sum(term) -%}
    sum({{ term }}) * 0.000001
{%- endmacro %}

{#- green: meets the target; amber: misses it by no more than the band; red: worse. -#}
{% macro kpi_status(value, target, amber_band, direction) -%}
    case
        when {{ value }} is null or {{ target }} is null then null
        when {{ direction }} = 'higher' and {{ value }} >= {{ target }} then 'green'
        when {{ direction }} = 'lower' and {{ value }} <= {{ target }} then 'green'
        when {{ direction }} = 'higher' and {{ value }} >= {{ target }} - {{ amber_band }} then 'amber'
        when {{ direction }} = 'lower' and {{ value }} <= {{ target }} + {{ amber_band }} then 'amber'
        else 'red'
    end
{%- endmacro %}

{#- A deadline KPI counts a fact once its outcome is known at the data's as-of
    moment: the step is done (in time or late), or its deadline has passed. A fact
    still inside its deadline counts in neither numerator nor denominator. -#}
{% macro outcome_known(done, deadline, as_of) -%}
    ({{ done }} or {{ deadline }} <= {{ as_of }})
{%- endmacro %}

{#- The KPIs one row of int_kpi_observations_unioned carries, named by the first: the
    anchor moments of a fact at which several KPIs are observed (a ticket's creation,
    its resolution, a survey's answer), in slot order. A KPI not listed here has rows of
    its own, one slot. The observations and their aggregate both name the slots from
    here, so a row's first KPI always names the same others.
    A survey's answer is two rows, its satisfaction and its dimension scores, rather
    than one of seven slots: every observation row, tickets' too, would carry the
    three extra slots' sums through the grouping sets. -#}
{% macro kpi_observation_sets() -%}
    {{ return([
        ['FRT', 'RESP_SLA', 'CMP_RATE', 'TICKETS'],
        ['FCR', 'AHT'],
        ['CSAT', 'CSI', 'NPS'],
        ['SURVEY_ATTITUDE', 'SURVEY_SPEED', 'SURVEY_PROFESSIONALISM', 'SAT_EXCELLENT'],
    ]) }}
{%- endmacro %}

{#- The slot numbers: as many as the largest set has KPIs. -#}
{% macro kpi_observation_slots() -%}
    {{ return(range(1, (kpi_observation_sets() | map('length') | max) + 1) | list) }}
{%- endmacro %}

{#- The kpi_id_N columns of a row of int_kpi_observations_unioned: first_kpi_id (a KPI
    id, or with is_expression a SQL expression, for rows that carry one KPI each) and
    the KPIs its set in kpi_observation_sets() lists after it; null for the slots it
    leaves empty. -#}
{% macro observed_kpi_ids(first_kpi_id, is_expression=false) -%}
    {%- set found = namespace(kpi_ids=[] if is_expression else [first_kpi_id]) -%}
    {%- for kpi_set in kpi_observation_sets() if not is_expression and kpi_set[0] == first_kpi_id -%}
        {%- set found.kpi_ids = kpi_set -%}
    {%- endfor -%}
    {%- for slot in kpi_observation_slots() -%}
        {%- if slot == 1 and is_expression -%}
            {{ first_kpi_id }}
        {%- elif slot <= found.kpi_ids | length -%}
            cast('{{ found.kpi_ids[slot - 1] }}' as {{ dbt.type_string() }})
        {%- else -%}
            cast(null as {{ dbt.type_string() }})
        {%- endif %} as kpi_id_{{ slot }}{{ ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- The KPI of slot N of a row whose first KPI is in first_kpi_column (an aggregate of
    int_kpi_observations_unioned that grouped by kpi_id_1 alone); null for an empty slot. -#}
{% macro observed_kpi_id(slot, first_kpi_column) -%}
    {%- if slot == 1 -%}
        {{ first_kpi_column }}
    {%- else -%}
        case {{ first_kpi_column }}
        {%- for kpi_set in kpi_observation_sets() if kpi_set | length >= slot %}
            when '{{ kpi_set[0] }}' then '{{ kpi_set[slot - 1] }}'
        {%- endfor %}
        end
    {%- endif -%}
{%- endmacro %}

{#- Empty numerator and denominator columns from first_slot to the last, each followed by
    a comma: for the rows of int_kpi_observations_unioned that fill fewer slots. -#}
{% macro empty_kpi_observation_slots(first_slot) -%}
    {%- for slot in kpi_observation_slots() if slot >= first_slot %}
        cast(null as double precision) as numerator_{{ slot }},
        cast(null as double precision) as denominator_{{ slot }},
    {%- endfor %}
{%- endmacro %}
