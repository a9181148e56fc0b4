"""No import circles anywhere in the package: a module graph of every edge_tan.* module shows none.

The graph is built from the source (ast), not by importing, so it covers torch-side and backend
modules on any machine. It includes ALL imports, module-level and inside functions alike: a lazy
import that closes a circle still ties the two modules together (and breaks as soon as someone
hoists it). `importlib.import_module("...")` calls with a string are not edges (the backend
registry's discovery list, which names modules that import the registry, not the other way round).
"""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_dirs() -> dict[str, Path]:
    """Package name -> folder, from pyproject's package list and package-dir map."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapped = cfg.get("package-dir", {})
    return {pkg: ROOT / mapped.get(pkg, pkg.replace(".", "/")) for pkg in cfg["packages"]}


def modules() -> dict[str, Path]:
    out = {}
    for pkg, d in package_dirs().items():
        for f in sorted(d.glob("*.py")):
            out[pkg if f.stem == "__init__" else f"{pkg}.{f.stem}"] = f
    return out


def _resolve(name: str, mods: dict) -> str | None:
    """The module an import of `name` runs: itself, or the nearest package above it that exists."""
    while name:
        if name in mods:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(mod: str, path: Path, mods: dict) -> set[str]:
    is_pkg = path.stem == "__init__"
    here = mod if is_pkg else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            # `from pkg import name`: name may be a submodule (an edge to it) or an attribute (an edge to pkg)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
        else:
            continue
        for t in targets:
            r = _resolve(t, mods) if t and t.startswith("edge_tan") else None
            if r and r != mod:
                found.add(r)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                c = visit(m)
                if c:
                    return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            c = visit(n)
            if c:
                return c
    return None


def test_the_package_has_no_import_cycles():
    mods = modules()
    assert {"edge_tan.tracker", "edge_tan.export.weights", "edge_tan.targets.registry", "edge_tan.bench.parity"} <= set(mods)
    graph = {m: imports_of(m, p, mods) for m, p in mods.items()}
    assert "edge_tan.targets.opener" in graph["edge_tan.track_cli"]   # lazy imports are edges too
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
