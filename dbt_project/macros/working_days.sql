{#- The number of working days after a ticket's creation it is due to be resolved,
    by priority (var resolution_working_days); null for an unknown priority. -#}
{% macro resolution_working_days(priority_column) -%}
    case {{ priority_column }}
    {%- for priority, days in var('resolution_working_days').items() %}
        when '{{ priority }}' then {{ days }}
    {%- endfor %}
    end
{%- endmacro %}

{#- Joins that find the deadline "`days` working days after the local day of
    `start_local`" in dim_dates (the rule is stated there); the deadline date is then
    `<name>_deadline.calendar_date`. -#}
{% macro join_working_day_deadline(name, start_local, days) -%}
    left join {{ ref('dim_dates') }} as {{ name }}_start
        on {{ name }}_start.calendar_date = cast({{ start_local }} as date)
    left join {{ ref('dim_dates') }} as {{ name }}_deadline
        on {{ name }}_deadline.is_working_day
        and {{ name }}_deadline.working_day_index = {{ name }}_start.working_day_index
            + {{ days }}
{%- endmacro %}
