"""Which KPIs the configured sources can measure.

Every KPI declares the source fields it needs (``requires`` in the dbt seed
kpi_definitions, the one definition of each KPI); the configuration says what a
source lacks (a connector of kind ``none``: the organisation has no such system;
``mapping.absent``: the system has no such field). A KPI that needs what is missing
is *not measured*: the KPI marts give it no value and the reason computed here (dbt
var kpis_not_measured, macro kpi_not_measured_reason), never 0 %.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from servicepulse.paths import DBT_SEEDS_DIR
from servicepulse.settings import ConfigError, Settings
from servicepulse.sources.contracts import load_contracts

KPI_DEFINITIONS = DBT_SEEDS_DIR / "kpi_definitions.csv"


@dataclass(frozen=True)
class SourceGaps:
    unconnected: tuple[str, ...]              # sources of kind none
    absent: dict[str, tuple[str, ...]]        # source -> fields it does not deliver

    def lacks(self, item: str) -> str | None:
        """Why input ``item`` (source.field) cannot be had, or None when it can."""
        source, _, field = item.partition(".")
        if source in self.unconnected:
            return f"no {source} source is connected"
        if field in self.absent.get(source, ()):
            return f"{source} source has no {field}"
        return None

    def reasons(self, requires: list[str]) -> list[str]:
        """Why a KPI that requires these inputs cannot be measured (empty: it can).
        An input written ``a|b`` is had when either alternative is (a source's own
        outcome flag standing in for the timestamps, say)."""
        found: list[str] = []
        for requirement in requires:
            missing = [self.lacks(item) for item in requirement.split("|")]
            # Every alternative is missing: the first one's reason says what to deliver.
            if all(missing) and missing[0] not in found:
                found.append(missing[0])
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
        contract = contracts.get(source)
        known = {c.name: c for c in contract.columns} if contract else {}
        mapping = connector.mapping
        # An optional field (a system's own outcome flag) is used only where the
        # mapping names it.
        named = {f for column in mapping.columns for f in mapping.fields_of(column)} | \
            set(mapping.constants) | set(mapping.defaults)
        unnamed_optional = [name for name, column in known.items()
                            if column.optional and name not in named]
        for field in mapping.absent:
            if field not in known:
                raise ConfigError(f"sources.connectors.{source}.mapping.absent: {field!r} is "
                                  f"not a field of the {source} contract "
                                  f"({', '.join(known)})")
            if known[field].required:
                raise ConfigError(f"sources.connectors.{source}.mapping.absent: {field!r} is "
                                  f"required: a {source} source must deliver it")
        if mapping.absent or unnamed_optional:
            absent[source] = tuple(sorted({*mapping.absent, *unnamed_optional}))
    return SourceGaps(tuple(unconnected), absent)


@lru_cache(maxsize=1)
def kpi_requirements(path: Path = KPI_DEFINITIONS) -> dict[str, list[str]]:
    """KPI id -> the source fields it requires, from the seed."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["kpi_id"]: row["requires"].split() for row in csv.DictReader(handle)}


def dbt_vars(settings: Settings) -> dict[str, object]:
    """What dbt needs to report the KPIs the sources cannot measure."""
    return {"kpis_not_measured": not_measured(settings)}


def not_measured(settings: Settings) -> dict[str, str]:
    """KPI id -> why it cannot be measured with the configured sources."""
    gaps = source_gaps(settings)
    found = {}
    for kpi_id, requires in kpi_requirements().items():
        reasons = gaps.reasons(requires)
        if reasons:
            found[kpi_id] = "; ".join(reasons)
    return found
