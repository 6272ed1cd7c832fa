{% test unique_combination_of_columns(model, combination_of_columns) %}
    select {{ combination_of_columns | join(', ') }}, count(*) as occurrences
    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}
    having count(*) > 1
{% endtest %}

{% test value_between(model, column_name, min_value, max_value, where_sql='1 = 1') %}
    select *
    from {{ model }}
    where {{ column_name }} is not null
      and ({{ where_sql }})
      and ({{ column_name }} < {{ min_value }} or {{ column_name }} > {{ max_value }})
{% endtest %}
