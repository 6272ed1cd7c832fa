from expectations._helpers import (
    allowed,
    fresh,
    in_order,
    not_null,
    nothing_quarantined,
    references,
    suite,
    volume,
)

SCHEMA, TABLE = "raw", "complaints"
KEY = "complaint_id"


def build_suite(scope):
    return suite(
        "raw_complaints",
        not_null("complaint_id"),
        not_null("customer_id", key=KEY),
        not_null("received_at", key=KEY),
        allowed("category", ["product_quality", "service_attitude", "delivery_delay", "billing",
                             "technical_fault", "other"], key=KEY),
        allowed("severity", ["urgent", "general"], key=KEY),
        in_order("received_at", "classified_at", key=KEY),
        in_order("classified_at", "dispatched_at", key=KEY),
        in_order("dispatched_at", "solution_at", key=KEY),
        in_order("solution_at", "resolved_at", key=KEY),
        in_order("resolved_at", "callback_at", key=KEY),
        references(scope, "customer_id", "raw", "crm_customers", "customer_id", key=KEY),
        references(scope, "ticket_id", "raw", "crm_tickets", "ticket_id", key=KEY),
        fresh(scope, "complaints"),
        volume(scope, "complaints", "received_at", KEY),
        nothing_quarantined(scope, "complaints"),
    )
