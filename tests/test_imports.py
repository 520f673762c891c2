"""The import graph of ``bench/`` and ``methods/`` (installed as ``bench.methods``): no cycle, and the
layering rules of the packages (DESIGN.md "Layers"; each package's docstring says the same).

Every ``import`` and ``from ... import`` is read with ``ast``, at any depth (function-level imports
count: a cycle or a wrong-way import deferred into a function is still one in the design).
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"bench": "bench", "bench.methods": "methods"}  # package name -> folder (as pyproject's package-dir)


def module_name(path: Path, root: Path = ROOT, packages: dict[str, str] = PACKAGES) -> str:
    for package, folder in sorted(packages.items(), key=lambda item: -len(item[1])):
        if path.is_relative_to(root / folder):
            parts = [package, *path.relative_to(root / folder).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(f"{path} is in none of the packages {packages}")


def imported_modules(path: Path, modules: set[str], root: Path = ROOT, packages: dict[str, str] = PACKAGES
                     ) -> set[str]:
    """The project modules ``path`` imports (``from pkg import mod`` resolves to ``pkg.mod`` when that is a
    module; relative imports resolved against the file's package)."""
    name = module_name(path, root, packages)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import bench.data.coco` -> bench.data.coco, else a parent
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph(root: Path = ROOT, packages: dict[str, str] | tuple = PACKAGES) -> dict[str, set[str]]:
    if not isinstance(packages, dict):
        packages = {name: name for name in packages}
    files = [p for folder in packages.values() for p in sorted((root / folder).rglob("*.py"))]
    modules = {module_name(p, root, packages) for p in files}
    return {module_name(p, root, packages): imported_modules(p, modules, root, packages) for p in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle():
    graph = import_graph()
    assert "bench.cli" in graph and "bench.methods.coop" in graph  # the walk found the packages
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_finds_a_cycle_through_a_function_level_import(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import thing\n",
                      "pkg/b.py": "def thing():\n    from pkg import c\n",
                      "pkg/c.py": "from . import a\n", "pkg/d.py": "import pkg.a\n"})
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"} and graph["pkg.d"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]


@pytest.mark.parametrize("files", [
    {"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import x\n", "pkg/b.py": "import os\nx = 1\n"},
    {"pkg/__init__.py": "from pkg.a import y\n", "pkg/a.py": "y = 2\n"},
])
def test_no_cycle_in_a_layered_package(tmp_path, files):
    _write(tmp_path, files)
    assert find_cycle(import_graph(tmp_path, ("pkg",))) is None


# ----- layering ----------------------------------------------------------------------------------

# Every module belongs to one concern: its subpackage of bench, or "contracts" for the modules at the root
# of bench (Method, registries, config and schema, records, io, locking, provenance, testing).
RUN_LAYER = {"cell", "grid"}
FORBIDDEN = {  # concern -> the concerns it never imports
    "contracts": {"methods", "report", "cli"} | RUN_LAYER,
    "methods": {"report", "cli"} | RUN_LAYER,
    "data": {"methods", "report", "cli", "generation"} | RUN_LAYER,
    "features": {"methods", "report", "cli", "generation"} | RUN_LAYER,
    "generation": {"methods", "report", "cli"} | RUN_LAYER,
    "toy": {"methods", "report", "cli", "features", "generation"} | RUN_LAYER,
    "cell": {"methods", "grid", "report", "cli"},
    "grid": {"methods", "report", "cli"},
}
ONLY = {  # concern -> the only modules it may import (besides its own concern)
    "analysis": set(),  # pure numpy/scipy
    "report": {"bench.records", "bench.io", "bench.errors", "bench.phases", "analysis"},  # reads records only
}


def concern(module: str) -> str:
    """``bench.<package>...`` -> the package's name; a module at the root of bench -> "contracts"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and is_package(parts[1]) else "contracts"


def is_package(name: str, root: Path = ROOT) -> bool:
    return name == "methods" or (root / "bench" / name / "__init__.py").is_file()


def layering_violations(graph: dict[str, set[str]], package_of=None) -> list[str]:
    """Each import that breaks a rule, as 'importer imports imported: why'."""
    package_of = package_of or concern
    out = []
    for module in sorted(graph):
        mine = package_of(module)
        for target in sorted(graph[module]):
            theirs = package_of(target)
            if theirs == mine:
                continue
            if theirs in FORBIDDEN.get(mine, ()):
                out.append(f"{module} imports {target}: {mine} never imports {theirs}")
            elif mine in ONLY and target not in ONLY[mine] and theirs not in ONLY[mine]:
                allowed = ", ".join(sorted(ONLY[mine])) or "nothing outside it"
                out.append(f"{module} imports {target}: {mine} may import only {allowed}")
    return out


def test_layering_rules_hold():
    graph = import_graph()
    concerns = {concern(m) for m in graph}
    assert {"contracts", "methods", "data", "features", "generation", "analysis", "cell", "grid", "report",
            "cli", "toy"} <= concerns, concerns  # the walk sees every concern the rules name
    assert concern("bench.registry") == "contracts" and concern("bench.methods._parts.losses") == "methods"
    assert concern("bench.features.cache") == "features" and concern("bench") == "contracts"
    violations = layering_violations(graph)
    assert not violations, "layering broken:\n" + "\n".join(violations)


def test_layering_violation_is_named(tmp_path):
    """A planted wrong-way import (a feature module importing the run layer, a method importing the report,
    the report importing a data reader) is found and named."""
    graph = {"bench.features.cache": {"bench.cell.session", "bench.io"},
             "bench.methods.coop": {"bench.report.model", "bench.method"},
             "bench.report.tables": {"bench.data.base", "bench.records", "bench.analysis.stats"},
             "bench.analysis.stats": {"bench.analysis.metrics"}}
    found = layering_violations(graph, package_of=lambda m: "contracts" if m.count(".") == 1 and m.split(".")[1]
                                in ("io", "records", "method") else m.split(".")[1])
    assert found == [
        "bench.features.cache imports bench.cell.session: features never imports cell",
        "bench.methods.coop imports bench.report.model: methods never imports report",
        "bench.report.tables imports bench.data.base: report may import only analysis, bench.errors, bench.io, "
        "bench.phases, bench.records",
    ]


def test_no_module_over_350_lines():
    """Small files with one job (STYLE.md): no module of bench or the methods passes 350 lines (the toy world's
    procedural drawing code excepted)."""
    long = {str(p.relative_to(ROOT)): n for folder in PACKAGES.values() for p in sorted((ROOT / folder).rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > 350 and "toy" not in p.relative_to(ROOT).parts[:2]}
    assert not long, f"modules over 350 lines: {long}"
