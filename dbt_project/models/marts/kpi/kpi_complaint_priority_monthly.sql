-- Grain: one row per (calendar month, dimension, dimension value, complaint category); see complaint_priority_table.
{{ complaint_priority_table('month') }}
