"""KPI targets with effective dates (`servicepulse targets`).

The catalogue's targets and amber bands are the dbt seed kpi_definitions; settings
``targets`` change them from an effective date on, for the whole organisation or one
department. dbt judges every period against the target in force on its first day
(intermediate/int_kpi_targets_in_force, from the var ``kpi_targets`` this module
writes), so a target changed today never recolours a past period. This module lists
the same ranges for people, from the same two inputs.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta

from servicepulse.paths import DBT_SEEDS_DIR
from servicepulse.settings import Settings

KPI_DEFINITIONS = DBT_SEEDS_DIR / "kpi_definitions.csv"
CATALOGUE_SINCE = date(1900, 1, 1)


@dataclass(frozen=True)
class TargetInForce:
    kpi_id: str
    department: str | None   # None: the whole organisation
    effective_from: date
    effective_until: date | None  # exclusive; None: until further notice
    target: float
    amber_band: float | None
    direction: str
    unit: str
    origin: str   # "catalogue" or "settings"
    reason: str | None = None


def catalogue() -> dict[str, dict[str, str]]:
    with KPI_DEFINITIONS.open(encoding="utf-8") as handle:
        return {row["kpi_id"]: row for row in csv.DictReader(handle)}


def dbt_vars(settings: Settings) -> dict[str, object]:
    """The configured targets as dbt reads them (var kpi_targets)."""
    return {"kpi_targets": [
        {"kpi_id": t.kpi, "department": t.department,
         "effective_from": t.effective_from.isoformat(), "target": t.target,
         "amber_band": t.amber_band} for t in settings.targets]}


def targets_in_force(settings: Settings) -> list[TargetInForce]:
    """Every target range, by KPI, then organisation before departments, then date."""
    definitions = catalogue()
    entries: list[TargetInForce] = []
    for kpi_id, row in definitions.items():
        if row["target"]:
            entries.append(TargetInForce(
                kpi_id, None, CATALOGUE_SINCE, None, float(row["target"]),
                float(row["amber_band"]) if row["amber_band"] else None, row["direction"],
                row["unit"], "catalogue"))
    for setting in settings.targets:
        row = definitions[setting.kpi]
        band = setting.amber_band if setting.amber_band is not None else (
            float(row["amber_band"]) if row["amber_band"] else None)
        entries.append(TargetInForce(
            setting.kpi, setting.department, setting.effective_from, None, setting.target,
            band, row["direction"], row["unit"], "settings", setting.reason))
    entries.sort(key=lambda e: (e.kpi_id, e.department or "", e.effective_from))
    ranged = []
    for index, entry in enumerate(entries):
        following = entries[index + 1] if index + 1 < len(entries) else None
        until = following.effective_from if following and (
            following.kpi_id, following.department) == (entry.kpi_id, entry.department) \
            else None
        ranged.append(TargetInForce(**{**entry.__dict__, "effective_until": until}))
    return ranged


def describe(entry: TargetInForce) -> str:
    sign = "≥" if entry.direction == "higher" else "≤"
    value = f"{entry.target * 100:g} %" if entry.unit == "fraction" else f"{entry.target:g}"
    last = (entry.effective_until - timedelta(days=1)).isoformat() \
        if entry.effective_until else "…"
    since = "…" if entry.effective_from == CATALOGUE_SINCE else entry.effective_from.isoformat()
    return f"{sign} {value} ({since} – {last})"
