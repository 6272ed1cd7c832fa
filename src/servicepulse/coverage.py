"""Which KPIs the configured sources can measure.

Every KPI declares the source fields it needs (``requires`` in the dbt seed
kpi_definitions, the one definition of each KPI); the configuration says what a
source lacks (a connector of kind ``none``: the organisation has no such system;
``mapping.absent``: the system has no such field). A KPI that needs what is missing
is *not measured*: the KPI marts give it no value and the reason (dbt macro
kpi_not_measured_reason, fed by the vars this module computes), never 0 %.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from servicepulse.settings import PROJECT_ROOT, ConfigError, Settings
from servicepulse.sources.contracts import load_contracts

KPI_DEFINITIONS = PROJECT_ROOT / "dbt_project" / "seeds" / "kpi_definitions.csv"


@dataclass(frozen=True)
class SourceGaps:
    unconnected: tuple[str, ...]              # sources of kind none
    absent: dict[str, tuple[str, ...]]        # source -> fields it does not deliver

    def dbt_vars(self) -> dict[str, object]:
        return {"unconnected_sources": list(self.unconnected),
                "absent_fields": {source: list(fields) for source, fields in self.absent.items()}}

    def reasons(self, requires: list[str]) -> list[str]:
        """Why inputs ``requires`` (source.field) cannot be had; the wording of the
        dbt macro kpi_not_measured_reason, in its order."""
        found = [f"no {source} source is connected" for source in self.unconnected
                 if any(item.startswith(f"{source}.") for item in requires)]
        found += [f"{source} source has no {field}" for source, fields in self.absent.items()
                  for field in fields if f"{source}.{field}" in requires]
        return found


def source_gaps(settings: Settings) -> SourceGaps:
    """What the configured connectors do not deliver; a field named absent that its
    contract does not have, or must have, is a configuration error."""
    contracts = load_contracts(settings.contracts_path)
    unconnected, absent = [], {}
    for source, connector in sorted(settings.sources.connectors.items()):
        if connector.kind == "none":
            unconnected.append(source)
            continue
        if not connector.mapping.absent:
            continue
        contract = contracts.get(source)
        known = {c.name: c for c in contract.columns} if contract else {}
        for field in connector.mapping.absent:
            if field not in known:
                raise ConfigError(f"sources.connectors.{source}.mapping.absent: {field!r} is "
                                  f"not a field of the {source} contract "
                                  f"({', '.join(known)})")
            if known[field].required:
                raise ConfigError(f"sources.connectors.{source}.mapping.absent: {field!r} is "
                                  f"required: a {source} source must deliver it")
        absent[source] = tuple(sorted(connector.mapping.absent))
    return SourceGaps(tuple(unconnected), absent)


@lru_cache(maxsize=1)
def kpi_requirements(path: Path = KPI_DEFINITIONS) -> dict[str, list[str]]:
    """KPI id -> the source fields it requires, from the seed."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["kpi_id"]: row["requires"].split() for row in csv.DictReader(handle)}


def not_measured(settings: Settings) -> dict[str, str]:
    """KPI id -> why it cannot be measured with the configured sources."""
    gaps = source_gaps(settings)
    found = {}
    for kpi_id, requires in kpi_requirements().items():
        reasons = gaps.reasons(requires)
        if reasons:
            found[kpi_id] = "; ".join(reasons)
    return found
