from expectations._helpers import (
    allowed,
    between,
    fresh,
    in_order,
    not_null,
    nothing_quarantined,
    references,
    suite,
    volume,
)

SCHEMA, TABLE = "raw", "crm_tickets"
KEY = "ticket_id"


def build_suite(scope):
    return suite(
        "raw_crm_tickets",
        not_null("ticket_id"),
        not_null("customer_id", key=KEY),
        not_null("created_at", key=KEY),
        allowed("channel", ["phone", "email", "online", "onsite"], key=KEY),
        allowed("service_type", ["tech_support", "installation", "after_sales", "consultation",
                                 "delivery"], key=KEY),
        allowed("priority", ["urgent", "general"], key=KEY),
        allowed("status", ["open", "resolved", "closed"], key=KEY),
        between("handle_seconds", 0, 7 * 24 * 3600, key=KEY),
        between("contacts_to_resolve", 1, 100, key=KEY),
        in_order("created_at", "first_response_at", key=KEY),
        in_order("created_at", "resolved_at", key=KEY),
        references(scope, "customer_id", "raw", "crm_customers", "customer_id", key=KEY),
        fresh(scope, "crm_tickets"),
        volume(scope, "crm_tickets", "created_at", KEY),
        nothing_quarantined(scope, "crm_tickets"),
    )
