from expectations._kpi_tables import kpi_table_suite

SCHEMA, TABLE = "marts", "kpi_weekly"


def build_suite(scope):
    return kpi_table_suite(scope, "marts_kpi_weekly", "7 day")
