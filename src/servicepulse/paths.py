"""Where the project's folders are: the one module that knows the checkout's layout.

The DAG files, the dbt project, the Great Expectations suites, the report templates and
the configuration sit beside ``src/`` (in a checkout and in the image alike), so they
are found from here; files inside the package (the benchmarks' SQL) are read with
``importlib.resources`` instead.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "config"
CONTRACTS_FILE = CONFIG_DIR / "contracts.yaml"   # the default; settings sources.contracts
DAGS_DIR = PROJECT_ROOT / "dags"
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
DBT_SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
REPORT_TEMPLATES_DIR = PROJECT_ROOT / "report_templates"
