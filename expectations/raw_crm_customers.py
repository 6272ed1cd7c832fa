from expectations._helpers import allowed, not_null, suite

SCHEMA, TABLE = "raw", "crm_customers"


def build_suite():
    return suite(
        "raw_crm_customers",
        not_null("customer_id"),
        allowed("customer_type", ["enterprise", "individual", "government"]),
        allowed("service_level", ["basic", "standard", "advanced"]),
    )
