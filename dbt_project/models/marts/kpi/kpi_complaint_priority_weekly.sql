-- Grain: one row per (ISO week, dimension, dimension value, complaint category); see complaint_priority_table.
{{ complaint_priority_table('week') }}
