"""The demo and the benchmarks: a deterministic data generator, stand-ins for the source
systems it feeds (a SQLite CRM, a complaint system's HTTP API) and the benchmarks that
time the pipeline on generated data.

Nothing a production run does needs this package: only the command line's demo-side
commands (`generate`, `demo`, and `run`/`load` of a configuration that names
`sources.demo_systems`) import it, and `tests/test_package_structure.py` keeps every
other module from doing so.
"""
