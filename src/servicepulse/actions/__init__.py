"""The rectification loop (检查 → 整改 → 验证): findings open corrective actions, people
work them in a small web app, and the data verifies them (docs/actions.md).

- ``store``: the warehouse tables (schema ``actions``) and every change to an action,
  each kept in the append-only history;
- ``tracking``: the nightly step: findings from the checked marts, actions opened by
  the rules in settings, done actions verified or reopened;
- ``people``: users, passwords (salted scrypt hashes) and who may do what;
- ``web``: `servicepulse actions serve`, server-rendered pages.
"""
