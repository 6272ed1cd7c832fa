from expectations._helpers import allowed, not_null, nothing_quarantined, suite

SCHEMA, TABLE = "raw", "crm_customers"
KEY = "customer_id"


def build_suite(scope):
    return suite(
        "raw_crm_customers",
        not_null("customer_id"),
        allowed("customer_type", ["enterprise", "individual", "government"], key=KEY),
        allowed("service_level", ["basic", "standard", "advanced"], key=KEY),
        nothing_quarantined(scope, "crm_customers"),
    )
