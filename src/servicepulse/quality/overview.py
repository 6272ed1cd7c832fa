"""output/quality/index.html: the stored check results as one self-contained page.

Great Expectations' Data Docs take their CSS and JavaScript from public CDNs, so on a
machine without internet they render as bare text. This page needs nothing but the
file: the newest runs with every check, its severity, result, counts and failing sample,
failures first, read from ``quality.check_results`` (what the reports' panel reads too).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from servicepulse.paths import REPORT_TEMPLATES_DIR
from servicepulse.settings import Settings
from servicepulse.warehouse import Warehouse

TEMPLATE_DIR = REPORT_TEMPLATES_DIR / "quality_overview"


def write_overview(settings: Settings, warehouse: Warehouse, runs: int = 20) -> Path:
    import jinja2

    schema = settings.warehouse.schema("quality")
    frame = warehouse.fetch_frame(
        f'with newest as (select run_id, layer, max(checked_at) as newest_at '
        f'from "{schema}".check_results group by run_id, layer '
        f'order by newest_at desc limit {int(runs)}) '
        f'select results.* from "{schema}".check_results as results '
        "join newest using (run_id, layer) order by newest.newest_at desc, run_id, layer, "
        "success, severity, suite, check_name")
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    grouped: dict[tuple[str, str], list[dict]] = {}
    for record in records:
        sample = json.loads(record["failing_sample"] or "[]")
        record["sample"] = ", ".join(map(str, sample[:5]))
        if record["unexpected_count"] is not None:
            record["unexpected_count"] = int(record["unexpected_count"])
        grouped.setdefault((record["run_id"], record["layer"]), []).append(record)
    summaries = []
    for (run_id, layer), results in grouped.items():
        failed = [r for r in results if not r["success"]]
        summaries.append({
            "run_id": run_id, "layer": layer, "results": results,
            "anchor": re.sub(r"[^A-Za-z0-9_-]", "_", f"{run_id}-{layer}"),
            "interval": f"{results[0]['interval_start']} – {results[0]['interval_end']}",
            "checks": len(results),
            "critical": sum(r["severity"] == "critical" for r in failed),
            "warnings": sum(r["severity"] == "warning" for r in failed)})
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
                                     autoescape=True)
    html = environment.get_template("index.html.j2").render(
        runs=summaries, written_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    path = settings.output_path / "quality" / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path
