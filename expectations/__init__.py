"""Great Expectations suites, one module per data asset.

Each module defines ``SCHEMA`` and ``TABLE`` (the asset, schema without the
environment prefix) and ``build_suite()``. Every expectation carries
``meta={"check": NAME, "severity": "critical" | "warning"}``; the configuration key
``quality.severities`` can override a severity by ``<suite>.<check>``.
"""
