from expectations._helpers import allowed, between, not_null, suite

SCHEMA, TABLE = "raw", "audits"


def build_suite():
    return suite(
        "raw_audits",
        not_null("audit_id"),
        allowed("kind", ["process_audit", "mystery_shopper"]),
        between("score_1", 0, 10),
        between("score_2", 0, 10),
        between("score_3", 0, 10),
    )
