from expectations._kpi_tables import kpi_table_suite

SCHEMA, TABLE = "marts", "kpi_daily"


def build_suite(scope):
    return kpi_table_suite(scope, "marts_kpi_daily", "1 day", flag_jumps=False)
