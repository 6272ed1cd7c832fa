"""Data-quality checks with Great Expectations, run inside the warehouse."""
