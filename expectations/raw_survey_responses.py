from expectations._helpers import between, in_order, not_null, suite

SCHEMA, TABLE = "raw", "survey_responses"


def build_suite():
    return suite(
        "raw_survey_responses",
        not_null("response_id"),
        not_null("sent_at"),
        between("satisfaction", 1, 5),
        between("nps_score", 0, 10),
        between("attitude_score", 1, 5),
        between("speed_score", 1, 5),
        between("professionalism_score", 1, 5),
        in_order("sent_at", "answered_at"),
    )
