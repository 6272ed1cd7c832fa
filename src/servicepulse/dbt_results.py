"""What a dbt build did, per model, from its run_results.json: for an operator.

dbt's console output is colourful prose; its run_results.json is the record. The
summary below goes into the task log as a table (each model, seed and test with
its status and seconds) and, compact, into the dbt task's return value and the
marts Asset's event extra, so the Airflow UI shows what was built without opening
a log.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# dbt's statuses: a model "success"/"error"/"skipped", a test "pass"/"fail"/"warn"/
# "error"/"skipped", an exposure "no-op".
PROBLEMS = ("error", "fail", "warn", "skipped", "runtime error")


@dataclass(frozen=True)
class NodeResult:
    kind: str          # model, seed, test, unit_test, snapshot, ...
    name: str
    status: str
    seconds: float
    message: str


def read_run_results(path: Path) -> list[NodeResult]:
    """The nodes of one dbt invocation, in the order dbt finished them."""
    document = json.loads(path.read_text(encoding="utf-8"))
    nodes = []
    for result in document.get("results", []):
        unique_id = result.get("unique_id", "")
        kind = unique_id.split(".", 1)[0] or "node"
        name = unique_id.rsplit(".", 1)[-1] if kind != "test" else unique_id.split(".")[2]
        nodes.append(NodeResult(kind, name, str(result.get("status")),
                                round(float(result.get("execution_time") or 0.0), 3),
                                " ".join(str(result.get("message") or "").split())))
    return nodes


def summarise(nodes: list[NodeResult], slowest: int = 5) -> dict[str, Any]:
    """A small, JSON-safe digest: counts by kind and status, the slowest models, and
    every node that did not plainly succeed, with dbt's message."""
    counts: dict[str, dict[str, int]] = {}
    for (kind, status), number in sorted(Counter((n.kind, n.status) for n in nodes).items()):
        counts.setdefault(kind, {})[status] = number
    built = [n for n in nodes if n.kind in ("model", "seed", "snapshot")]
    return {
        "nodes": len(nodes),
        "counts": counts,
        "seconds": round(sum(n.seconds for n in nodes), 1),
        "slowest": [{"name": n.name, "seconds": n.seconds}
                    for n in sorted(built, key=lambda n: -n.seconds)[:slowest]],
        "problems": [{"kind": n.kind, "name": n.name, "status": n.status,
                      "message": n.message[:300]}
                     for n in nodes if n.status in PROBLEMS],
    }


def log_table(nodes: list[NodeResult]) -> str:
    """One line per model, seed and snapshot (tests are counted, their failures listed)."""
    lines = [f"{'kind':<10}{'name':<58}{'status':<10}{'seconds':>8}"]
    for node in nodes:
        if node.kind in ("model", "seed", "snapshot") or node.status in PROBLEMS:
            lines.append(f"{node.kind:<10}{node.name[:57]:<58}{node.status:<10}"
                         f"{node.seconds:>8.2f}")
    tests = Counter(n.status for n in nodes if n.kind in ("test", "unit_test"))
    if tests:
        lines.append("tests: " + ", ".join(f"{count} {status}"
                                           for status, count in sorted(tests.items())))
    return "\n".join(lines)
