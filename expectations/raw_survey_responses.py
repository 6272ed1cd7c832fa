from expectations._helpers import (
    between,
    fresh,
    in_order,
    not_null,
    nothing_quarantined,
    references,
    suite,
)

SCHEMA, TABLE = "raw", "survey_responses"
KEY = "response_id"


def build_suite(scope):
    return suite(
        "raw_survey_responses",
        not_null("response_id"),
        not_null("sent_at", key=KEY),
        between("satisfaction", 1, 5, key=KEY),
        between("nps_score", 0, 10, key=KEY),
        between("attitude_score", 1, 5, key=KEY),
        between("speed_score", 1, 5, key=KEY),
        between("professionalism_score", 1, 5, key=KEY),
        in_order("sent_at", "answered_at", key=KEY),
        references(scope, "ticket_id", "raw", "crm_tickets", "ticket_id", key=KEY),
        references(scope, "complaint_id", "raw", "complaints", "complaint_id", key=KEY),
        references(scope, "customer_id", "raw", "crm_customers", "customer_id", key=KEY),
        fresh(scope, "survey_responses"),
        nothing_quarantined(scope, "survey_responses"),
    )
