"""Try a source's delivery and mapping before anything is written (`load --dry-run`).

The delivery is loaded exactly as the nightly would load it (the same extract, mapping,
checks and quarantine), but into a throw-away DuckDB warehouse and landing zone in a
temporary folder: the configured warehouse, landing zone and drop folder are not
touched. What comes back is what a data engineer onboarding a new export asks: how many
rows would load, which would be quarantined and why, which columns the contract does
not know, and which KPIs the source makes measurable and which it cannot.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from servicepulse.coverage import kpi_requirements, not_measured
from servicepulse.settings import Settings

SAMPLE_ROWS = 3


@dataclass
class DryRun:
    source: str
    files: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_outside_window: int
    partitions: tuple[str, str]
    new_columns: list[str]
    # (field, reason) -> how many rows and the first few row numbers and files
    quarantine: list[dict[str, Any]] = field(default_factory=list)
    measurable: list[str] = field(default_factory=list)
    not_measured: dict[str, str] = field(default_factory=dict)
    connected: bool = True

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _throwaway_settings(settings: Settings, folder: Path) -> Settings:
    warehouse = settings.warehouse.model_copy(
        update={"kind": "duckdb", "duckdb_path": folder / "dry-run.duckdb",
                "schema_prefix": ""})
    sources = settings.sources.model_copy(update={"landing_directory": folder / "landing"})
    return settings.model_copy(update={"warehouse": warehouse, "sources": sources,
                                       "output_dir": folder})


def dry_run_load(settings: Settings, source: str, interval_start: datetime,
                 interval_end: datetime) -> DryRun:
    """Load ``source`` for the interval into a temporary warehouse and say what happened;
    raises the loader's SourceError when the delivery cannot be loaded at all."""
    from servicepulse.load import QUARANTINE_TABLE, load_source
    from servicepulse.warehouse import connected

    coverage = not_measured(settings)
    own = [kpi for kpi, requires in kpi_requirements().items()
           if any(item.startswith(f"{source}.") for item in requires)]
    connector = settings.sources.connectors.get(source)
    with tempfile.TemporaryDirectory(prefix="servicepulse-dry-run-") as folder:
        scratch = _throwaway_settings(settings, Path(folder))
        with connected(scratch) as warehouse:
            result = load_source(scratch, warehouse, source, interval_start, interval_end,
                                 full_refresh=True)
            quarantined = warehouse.fetch_frame(
                f'select source_file, source_row, field, reason from raw."{QUARANTINE_TABLE}" '
                "where source = ? order by source_row, field", [source]) \
                if warehouse.table_exists("raw", QUARANTINE_TABLE) else None
    reasons: list[dict[str, Any]] = []
    if quarantined is not None and len(quarantined):
        counts = Counter(zip(quarantined["field"], quarantined["reason"], strict=True))
        for (field_name, reason), count in counts.most_common():
            rows = quarantined[(quarantined["field"] == field_name)
                               & (quarantined["reason"] == reason)].head(SAMPLE_ROWS)
            reasons.append({"field": field_name, "reason": reason, "rows": count,
                            "first": [f"{r.source_file}, row {r.source_row}"
                                      for r in rows.itertuples()]})
    return DryRun(
        source=source, files=len(result.files), rows_read=result.rows_in_delivery,
        rows_loaded=result.rows_loaded, rows_quarantined=result.rows_quarantined,
        rows_outside_window=sum(f["rows_outside_window"] for f in result.files),
        partitions=result.partitions, new_columns=result.new_columns, quarantine=reasons,
        measurable=[kpi for kpi in own if kpi not in coverage],
        not_measured={kpi: coverage[kpi] for kpi in own if kpi in coverage},
        connected=connector is not None and connector.kind != "none")
