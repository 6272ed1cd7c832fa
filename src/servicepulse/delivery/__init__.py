"""Getting reports to people: e-mail messages and the local outbox."""
