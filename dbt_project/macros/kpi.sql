{#- The value of a KPI from its aggregated observations, by the KPI's kind. A KPI
    with nothing to measure is null, never 0; a count (a stock) of nothing is 0. -#}
{% macro kpi_value(kind, numerator, denominator, median_measure, p90_measure) -%}
    case
        when {{ kind }} = 'count' then coalesce({{ numerator }}, 0)
        when coalesce({{ denominator }}, 0) = 0 then null
        when {{ kind }} in ('ratio', 'mean') then {{ numerator }} / {{ denominator }}
        when {{ kind }} = 'nps' then 100.0 * {{ numerator }} / {{ denominator }}
        when {{ kind }} = 'median' then {{ median_measure }}
        when {{ kind }} = 'p90' then {{ p90_measure }}
    end
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
