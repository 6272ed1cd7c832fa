"""The package's structure stays one a next engineer can carry on.

- No import circle inside src/servicepulse: a module never needs, directly or through
  others, a module that needs it (lazy imports inside functions count too: they are
  the same dependency, only deferred).
- Every third-party module the package imports is declared in pyproject.toml.
"""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "servicepulse"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module name ``path`` imports, absolute, at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            # `from servicepulse.delivery import ledger` imports a module, not a name.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        graph[name] = {target for target in _imports(path)
                       if target in files and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    sys.setrecursionlimit(10_000)

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_no_import_circle_inside_the_package():
    graph = _graph()
    # Package __init__ files import nothing; a parent package is not a dependency.
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    cycles = _cycles(graph)
    described = ["; ".join(f"{a} -> {', '.join(sorted(graph[a] & set(cycle)))}"
                           for a in cycle) for cycle in cycles]
    assert not cycles, "import circles:\n" + "\n".join(described)


def test_the_cycle_finder_finds_a_circle():
    """The check above could fail: a two-module circle is found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def _declared(group: str | None = None) -> set[str]:
    """Distribution names the project depends on (or those of a dependency group)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = (project["project"]["dependencies"] if group is None
                    else project.get("dependency-groups", {}).get(group, []))
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0]
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


# The project's own top-level folders that the package reads as code (the GX suites).
FIRST_PARTY = {path.name for path in ROOT.iterdir() if path.is_dir() and (
    (path / "__init__.py").exists() or any(path.glob("*.py")))}
# `make bench` runs from a development checkout, whose environment has the dev group;
# the benchmarks are the one module allowed to use it.
DEV_ONLY_MODULES = {"demo/benchmarks.py"}


def test_every_third_party_import_is_declared():
    distributions = packages_distributions()
    declared = _declared()
    dev = _declared("dev")
    standard = set(sys.stdlib_module_names)
    undeclared = {}
    for path in PACKAGE.rglob("*.py"):
        for module in _imports(path):
            top = module.split(".")[0]
            if not top or top in {"servicepulse", "__future__"} | standard | FIRST_PARTY:
                continue
            providers = {d.lower().replace("_", "-") for d in distributions.get(top, [])}
            if path.relative_to(PACKAGE).as_posix() in DEV_ONLY_MODULES and providers & dev:
                continue
            if not providers:
                undeclared.setdefault(f"{top} (not installed)", set()).add(
                    str(path.relative_to(ROOT)))
            elif not providers & declared:
                undeclared.setdefault(f"{top} (from {', '.join(sorted(providers))})",
                                      set()).add(str(path.relative_to(ROOT)))
    assert not undeclared, "imported but not declared in pyproject.toml: " + "; ".join(
        f"{module} in {', '.join(sorted(files))}" for module, files in sorted(undeclared.items()))


def test_nothing_a_production_run_does_imports_the_demo():
    """The demo (generator, stand-in source systems, benchmarks) stays out of the
    runtime: only the command line's demo-side commands reach it."""
    allowed = {"servicepulse.cli"}
    graph = _graph()
    reaching = sorted(name for name, targets in graph.items()
                      if not name.startswith("servicepulse.demo") and name not in allowed
                      and any(t == "servicepulse.demo" or t.startswith("servicepulse.demo.")
                              for t in targets))
    assert not reaching, f"runtime modules importing servicepulse.demo: {reaching}"
    assert "servicepulse.demo.generate" in graph        # the package is where it should be


def test_the_suites_load_where_the_checkout_is_not_on_sys_path(tmp_path):
    """An Airflow task runs from its own folder: the GX suites (expectations/, beside
    src/) must load there too, without anyone putting the checkout on sys.path."""
    import subprocess

    code = ("import sys; from datetime import datetime, UTC; "
            "from servicepulse.quality import runner; from servicepulse.settings import "
            "load_settings; settings = load_settings(None, environ={}); "
            "assert not any(p.rstrip('/') == str(runner.EXPECTATIONS_DIR.parent) for p in sys.path); "
            "scope = runner.scope_for(settings, datetime(2026, 11, 1, tzinfo=UTC), "
            "datetime(2026, 11, 2, tzinfo=UTC)); "
            "print(type(scope).__name__, len(runner.suite_modules()))")
    completed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                               text=True, check=False, env={"PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    name, suites = completed.stdout.split()
    assert name == "Scope" and int(suites) == len(list((ROOT / "expectations").glob("[!_]*.py")))


@pytest.mark.parametrize("requirement, name", [("dbt-core>=1.11,<1.12", "dbt-core"),
                                               ("celery[redis]>=5.5,<5.7", "celery")])
def test_requirement_names_are_read(requirement, name, monkeypatch, tmp_path):
    project = tmp_path / "pyproject.toml"
    project.write_text(f'[project]\ndependencies = ["{requirement}"]\n', encoding="utf-8")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _declared() == {name}


def test_the_kpi_page_is_what_the_seed_says():
    """docs/kpis.md is written from dbt's kpi_definitions seed (make docs)."""
    from servicepulse import kpi_docs

    assert kpi_docs.PAGE.read_text(encoding="utf-8") == kpi_docs.render(), \
        "docs/kpis.md is stale: run `make docs`"
    assert "`CMP_SOLUTION_24H`" in kpi_docs.render()
