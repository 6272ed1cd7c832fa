{#- The dimensions every KPI can be cut by (catalogue: "Dimensions every KPI can be
    cut by"), as (dimension name in the KPI marts, column in the facts). Facts that
    cannot say a dimension (an audit has no channel) leave its column null and are
    left out of that cut. Adding a dimension here adds it to every KPI mart. -#}
{% macro kpi_dimensions() %}
    {{ return([
        ('department', 'department'),
        ('agent', 'agent_id'),
        ('channel', 'channel'),
        ('service_type', 'service_type'),
        ('customer_type', 'customer_type'),
        ('service_level', 'service_level'),
        ('region', 'region'),
        ('complaint_category', 'complaint_category'),
        ('priority', 'priority'),
    ]) }}
{% endmacro %}

{#- The dimension columns of a fact, in kpi_dimensions() order; columns the fact does
    not have (not in `available`) are typed nulls, so facts can be unioned. -#}
{% macro dimension_columns(available=none, relation=none) -%}
    {%- for name, column in kpi_dimensions() -%}
        {%- if available is none or column in available -%}
            {{ relation ~ '.' if relation }}{{ column }}
        {%- else -%}
            cast(null as {{ dbt.type_string() }}) as {{ column }}
        {%- endif -%}
        {{- ", " if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- Weights from a project var (a mapping name -> weight), checked to sum to 1 when
    the project compiles, so a misconfigured KPI never builds silently. -#}
{% macro checked_weights(var_name, expected_keys) %}
    {%- set weights = var(var_name) -%}
    {%- if weights.keys() | list | sort != expected_keys | sort -%}
        {{ exceptions.raise_compiler_error("var " ~ var_name ~ " must have exactly the keys "
            ~ (expected_keys | join(', ')) ~ "; got " ~ (weights.keys() | list | join(', '))) }}
    {%- endif -%}
    {%- set total = weights.values() | sum -%}
    {%- if (total - 1.0) | abs > 0.000001 -%}
        {{ exceptions.raise_compiler_error("var " ~ var_name ~ ": weights must sum to 1, got "
            ~ total) }}
    {%- endif -%}
    {{ return(weights) }}
{% endmacro %}

{#- The organisation and every dimension of kpi_dimensions() in one aggregation: the
    (dimension, dimension_value) columns of a query grouped by slice_grouping_sets().
    A fact that cannot say a dimension (null) lands in a null value, no slice. -#}
{% macro slice_columns() -%}
    case
    {%- for name, column in kpi_dimensions() %}
        when grouping({{ column }}) = 0 then '{{ name }}'
    {%- endfor %}
        else 'organisation'
    end as dimension,
    case
    {%- for name, column in kpi_dimensions() %}
        when grouping({{ column }}) = 0 then {{ column }}
    {%- endfor %}
        else 'all'
    end as dimension_value
{%- endmacro %}

{% macro slice_grouping_sets(group_columns) -%}
    group by grouping sets (
        ({{ group_columns }})
        {%- for _, column in kpi_dimensions() %},
        ({{ group_columns }}, {{ column }})
        {%- endfor %}
    )
{%- endmacro %}
