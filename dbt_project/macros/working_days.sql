{#- The number of working days after a ticket's creation it is due to be resolved,
    by priority (var resolution_working_days); null for an unknown priority. -#}
{% macro resolution_working_days(priority_column) -%}
    case {{ priority_column }}
    {%- for priority, days in var('resolution_working_days').items() %}
        when '{{ priority }}' then {{ days }}
    {%- endfor %}
    end
{%- endmacro %}
