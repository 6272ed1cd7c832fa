{#- Reduce a raw table to the latest version of each key: the largest version column
    wins; a tie (the same row delivered twice) goes to the latest load, then the
    file that sorts last (several files of one batch: exports are named by time),
    then the last row of the file, so the choice is deterministic.

    In an incremental model (the large sources' staging tables) only the keys with a
    version loaded after the table's newest load time are ranked, over all their
    versions, so a night costs in proportion to what arrived, not to the history. -#}
{% macro latest_version(relation, key, version_column='updated_at') %}
    select * from (
        select
            *,
            row_number() over (
                partition by {{ key }}
                order by {{ version_column }} desc, _loaded_at desc, _source_file desc, _source_row desc
            ) as _version_rank
        {%- if is_incremental() %}
        from ({{ rows_matching(relation, key ~ ' in ' ~ keys_loaded_since_watermark(relation, key)) }}) as changed
        {%- else %}
        from {{ relation }}
        {%- endif %}
    ) as versions
    where _version_rank = 1
{% endmacro %}
