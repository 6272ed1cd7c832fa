from expectations._helpers import allowed, in_order, not_null, suite

SCHEMA, TABLE = "raw", "complaints"


def build_suite():
    return suite(
        "raw_complaints",
        not_null("complaint_id"),
        not_null("customer_id"),
        not_null("received_at"),
        allowed("category", ["product_quality", "service_attitude", "delivery_delay", "billing",
                             "technical_fault", "other"]),
        allowed("severity", ["urgent", "general"]),
        in_order("received_at", "classified_at"),
        in_order("classified_at", "dispatched_at"),
        in_order("dispatched_at", "solution_at"),
        in_order("solution_at", "resolved_at"),
        in_order("resolved_at", "callback_at"),
    )
