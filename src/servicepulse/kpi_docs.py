"""docs/kpis.md, written from the seed that defines every KPI (kpi_definitions): the
page cannot drift from what dbt computes. `make docs` rewrites it; a test fails when
the committed page differs from what the seed says.

    python -m servicepulse.kpi_docs            # rewrite docs/kpis.md
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from servicepulse.coverage import KPI_DEFINITIONS
from servicepulse.paths import PROJECT_ROOT

PAGE = PROJECT_ROOT / "docs" / "kpis.md"

# How the KPI marts turn a KPI's observations into its value (macros/kpi.sql, kpi_value).
KINDS = {
    "ratio": "sum of numerators / sum of denominators over the period's observations",
    "mean": "mean of the observed values",
    "nps": "% promoters (9–10) − % detractors (0–6), in points",
    "median": "median of the observed values",
    "p90": "90th percentile of the observed values",
    "count": "a stock: open items at the period's end (or at the data's as-of moment)",
    "total": "a volume: how many in the period",
    "weighted": "weighted sum of other KPIs, each 0–100 (weights: dbt vars)",
}
SECTIONS = {
    "headline": "the report tiles and tables",
    "backlog": "the backlog's ageing buckets",
    "component": "feeds a weighted KPI",
    "volume": "what the period handled",
    "feedback": "the customer-feedback section (response rate, dimension scores)",
}


def _number(text: str) -> str:
    return text if text else "—"


def render(definitions: Path = KPI_DEFINITIONS) -> str:
    with definitions.open(encoding="utf-8", newline="") as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["display_order"]))
    lines = [
        "# KPI definitions",
        "",
        "<!-- Written by `python -m servicepulse.kpi_docs` (make docs) from",
        "     dbt_project/seeds/kpi_definitions.csv; edit the seed, not this page. -->",
        "",
        ("Each KPI is defined once, in the dbt seed `kpi_definitions`; the KPI marts "
        "(`kpi_daily`, `kpi_weekly`, `kpi_monthly`) compute it for every period, the "
        "organisation, each department and every dimension that can cut it, and reports "
        "and checks read those tables. The business definitions and attribution rules are "
        "in the KPI catalogue; a KPI whose inputs the sources do not deliver is *not "
        "measured* (null, with the reason), never 0."),
        "",
        ("The targets and amber bands below are the catalogue's. The settings' `targets` "
        "replace them from an effective date, for the organisation or one department "
        "(`servicepulse targets` lists the days each holds): every period is judged "
        "against the target in force on its first day "
        "(`intermediate.int_kpi_targets_in_force`), so a target changed today never "
        "recolours a past period."),
        "",
        ("| # | KPI | 名称 | Name | How it is computed | Unit | Better | Target | Amber band "
        "| Section | Needs |"),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        how = KINDS[row["kind"]]
        if row["observations_of"]:
            how += f" (of {row['observations_of']}'s observations)"
        # "a|b": either will do (a pipe would end the table cell).
        needs = ", ".join(" or ".join(f"`{field}`" for field in item.split("|"))
                          for item in row["requires"].split())
        lines.append(
            f"| {row['display_order']} | `{row['kpi_id']}` | {row['name_zh']} | "
            f"{row['name_en']} | {row['kind']}: {how} | {row['unit']} | {row['direction']} | "
            f"{_number(row['target'])} | {_number(row['amber_band'])} | "
            f"{row['report_section']} | {needs} |")
    lines += [
        "",
        "Status: green on the right side of the target, amber within the amber band on "
        "the wrong side, red beyond it; a KPI without a target has no status. Sections: "
        + "; ".join(f"{name}, {what}" for name, what in SECTIONS.items()) + ". "
        "*Needs* lists the source fields (`source.field`) without which the KPI is not "
        "measured.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    PAGE.write_text(render(), encoding="utf-8")
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
