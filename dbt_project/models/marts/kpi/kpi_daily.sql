{{ config(materialized='incremental', unique_key='period_start', incremental_strategy='delete+insert',
          on_schema_change='append_new_columns', pre_hook="{{ kpi_delete_periods_outside_span('day') }}") }}
-- Grain: one row per (local day, dimension, dimension value, KPI); see kpi_period_table.
{{ kpi_period_table('day') }}
