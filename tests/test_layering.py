"""The package's imports point one way (ARCHITECTURE.md "Layers"), with no circle: held by reading the
source with ast, so function-level (lazy) imports count as much as module-level ones.

    cli ─► report ─► screening, results, calculators (metadata)   (report: presentation over stored answers)
    cli ─► workflows ─► screening, calculators, results, hpc
    calculators ─► screening (element data)
    everyone ─► constants, filters               (neutral leaf modules: named values, the filter grammar)

hpc knows nothing of materials: no screening, calculators, results, ase or pymatgen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tansaku

PACKAGE = Path(tansaku.__file__).parent
BASE = {"constants", "filters", ""}  # "" = the package itself (tansaku.__version__)

# layer -> the layers it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "constants": {""},
    "filters": {"", "constants"},
    "hpc": BASE,
    "screening": BASE,
    "calculators": BASE | {"screening"},
    "results": BASE,
    "workflows": BASE | {"screening", "calculators", "results", "hpc"},
    # report reads calculator metadata by name (moment semantics, caveats: report/sources.py), never builds one
    "report": BASE | {"screening", "results", "calculators"},
    "cli": BASE | {"workflows", "report", "screening", "calculators", "results", "hpc"},
    "__main__": {"cli"},
    "": set(),
}
# third-party packages a layer must not import
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "hpc": {"ase", "pymatgen", "spglib", "h5py", "chgnet", "sevenn", "gpaw"},
    "constants": {"ase", "pymatgen", "numpy", "h5py"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """tansaku.results.query -> results; tansaku.cli -> cli; tansaku -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports(path: Path, modules: set[str]) -> list[tuple[str, int]]:
    """(imported module, line) of every import in the file, at any depth; ``from pkg import sub`` names
    the submodule when ``pkg.sub`` is one of ``modules``."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in modules else base, node.lineno))
    return found


def package_graph() -> dict[str, list[tuple[str, int]]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in files}
    return {module_name(p): imports(p, modules) for p in files}


def layering_violations(graph: dict[str, list[tuple[str, int]]]) -> list[str]:
    problems = []
    for module, found in graph.items():
        own = layer(module)
        for target, line in found:
            top = target.split(".")[0]
            where = f"{module.replace('.', '/')}.py:{line}"
            if top == "tansaku":
                other = layer(target)
                if other != own and other not in ALLOWED[own]:
                    problems.append(f"{where}: {own or 'tansaku'} must not import {target} ({other} layer)")
            elif top in FORBIDDEN_THIRD_PARTY.get(own, ()):
                problems.append(f"{where}: {own} must not import {target} (no materials code in {own})")
    return problems


def import_cycles(graph: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each a circle of imports."""
    edges = {m: sorted({t for t, _ in found if t in graph and t != m}) for m, found in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in edges:
        if v not in index:
            visit(v)
    return cycles


def test_every_module_has_a_layer():
    unknown = sorted({layer(m) for m in package_graph()} - set(ALLOWED))
    assert not unknown, f"add the new layer(s) {unknown} to ALLOWED in {__file__} (and to ARCHITECTURE)"


def test_imports_point_down():
    problems = layering_violations(package_graph())
    assert not problems, "imports against the layering:\n" + "\n".join(problems)


def test_no_import_circles():
    cycles = import_cycles(package_graph())
    assert not cycles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("module, target, expected", [
    ("tansaku.results.query", "tansaku.workflows.campaign", "results must not import tansaku.workflows.campaign"),
    ("tansaku.results.store", "tansaku.calculators", "results must not import tansaku.calculators"),
    ("tansaku.hpc.threads", "ase.io", "hpc must not import ase.io"),
    ("tansaku.screening.rank", "tansaku.report.html", "screening must not import tansaku.report.html"),
    ("tansaku.workflows.ranking", "tansaku.cli", "workflows must not import tansaku.cli"),
])
def test_the_check_sees_a_forbidden_import(module, target, expected):
    """The checker itself: a forbidden edge added to the real graph is reported."""
    graph = package_graph()
    graph[module] = [*graph[module], (target, 1)]
    assert any(expected in p for p in layering_violations(graph))


def test_the_check_sees_a_circle():
    graph = package_graph()
    graph["tansaku.results.read"] = [*graph["tansaku.results.read"], ("tansaku.results.store", 1)]
    assert any({"tansaku.results.read", "tansaku.results.store"} <= set(c) for c in import_cycles(graph))
