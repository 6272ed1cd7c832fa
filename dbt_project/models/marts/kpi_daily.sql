-- Grain: one row per (local day, dimension, dimension value, KPI); see kpi_period_table.
{{ kpi_period_table('day') }}
