from expectations._kpi_tables import kpi_table_suite

SCHEMA, TABLE = "marts", "kpi_monthly"


def build_suite():
    return kpi_table_suite("marts_kpi_monthly")
