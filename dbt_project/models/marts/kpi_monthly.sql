-- Grain: one row per (calendar month, dimension, dimension value, KPI); see kpi_period_table.
{{ kpi_period_table('month') }}
