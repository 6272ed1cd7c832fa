-- Grain: one row per (ISO week, dimension, dimension value, KPI); see kpi_period_table.
{{ kpi_period_table('week') }}
