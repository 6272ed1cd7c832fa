from expectations._helpers import allowed, between, not_null, nothing_quarantined, suite

SCHEMA, TABLE = "raw", "audits"
KEY = "audit_id"


def build_suite(scope):
    return suite(
        "raw_audits",
        not_null("audit_id"),
        allowed("kind", ["process_audit", "mystery_shopper"], key=KEY),
        between("score_1", 0, 10, key=KEY),
        between("score_2", 0, 10, key=KEY),
        between("score_3", 0, 10, key=KEY),
        nothing_quarantined(scope, "audits"),
    )
