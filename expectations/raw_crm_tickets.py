from expectations._helpers import allowed, between, in_order, not_null, suite

SCHEMA, TABLE = "raw", "crm_tickets"


def build_suite():
    return suite(
        "raw_crm_tickets",
        not_null("ticket_id"),
        not_null("customer_id"),
        not_null("created_at"),
        allowed("channel", ["phone", "email", "online", "onsite"]),
        allowed("service_type", ["tech_support", "installation", "after_sales", "consultation",
                                 "delivery"]),
        allowed("priority", ["urgent", "general"]),
        allowed("status", ["open", "resolved", "closed"]),
        between("handle_seconds", 0, 7 * 24 * 3600),
        between("contacts_to_resolve", 1, 100),
        in_order("created_at", "first_response_at"),
        in_order("created_at", "resolved_at"),
    )
