"""The package's layers, and no import circles: a module graph of every edge_tan.* module.

Layers (`layer_of`): the runtime (`edge_tan.runtime`, and `edge_tan.embed`, its public name) imports
nothing outside itself; the core beside it (readers, datasets, phantom, metrics) imports the runtime
only; `edge_tan.targets` (artifact builders) and `edge_tan.export` (the torch side) import the core
and the runtime, not each other; the application (the CLI and its command handlers, batch, bench)
may import anything. Backends reach each other only through the registry (`edge_tan.runtime.registry`).

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


def unresolved_imports(mod: str, path: Path, mods: dict) -> list[str]:
    """edge_tan.* names an import asks for that are no module here (a path left over from a move)."""
    here = mod if path.stem == "__init__" else mod.rpartition(".")[0]
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names if a.name.startswith("edge_tan") and a.name not in mods]
        elif isinstance(node, ast.ImportFrom):
            base = here
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            if base and base.startswith("edge_tan") and base not in mods:
                bad.append(base)
    return bad


# ---- layers ---------------------------------------------------------------------------------
APP_MODULES = ("edge_tan.cli", "edge_tan.track_cli", "edge_tan.evaluate", "edge_tan.eval_reports", "edge_tan.live",
               "edge_tan.info", "edge_tan.qc_calibrate", "edge_tan.batch", "edge_tan.bench")
# what each layer may import besides itself
MAY_IMPORT = {"runtime": set(), "core": {"runtime"}, "targets": {"core", "runtime"},
              "export": {"core", "runtime"}, "app": {"runtime", "core", "targets", "export"}}


def _under(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def layer_of(mod: str) -> str:
    if _under(mod, "edge_tan.runtime") or mod == "edge_tan.embed":
        return "runtime"
    if _under(mod, "edge_tan.targets"):
        return "targets"
    if _under(mod, "edge_tan.export"):
        return "export"
    if any(_under(mod, a) for a in APP_MODULES):
        return "app"
    return "core"


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for m, deps in sorted(graph.items()):
        lm = layer_of(m)
        for d in sorted(deps):
            ld = layer_of(d)
            if ld != lm and ld not in MAY_IMPORT[lm]:
                out.append(f"{m} ({lm}) imports {d} ({ld})")
    return out


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph.get(m, ())
    return seen


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
    assert {"edge_tan.runtime.tracker", "edge_tan.export.weights", "edge_tan.runtime.registry", "edge_tan.bench.parity"} <= set(mods)
    graph = {m: imports_of(m, p, mods) for m, p in mods.items()}
    assert "edge_tan.targets.opener" in graph["edge_tan.track_cli"]   # lazy imports are edges too
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def _graph():
    mods = modules()
    return mods, {m: imports_of(m, p, mods) for m, p in mods.items()}


def test_every_import_names_a_module_that_exists():
    mods = modules()
    bad = {m: unresolved_imports(m, p, mods) for m, p in mods.items()}
    assert not {m: b for m, b in bad.items() if b}


def test_the_layers_point_one_way():
    _, graph = _graph()
    assert layer_violations(graph) == []


def test_the_embedding_api_reaches_the_runtime_alone():
    _, graph = _graph()
    reach = reachable(graph, "edge_tan.embed")
    assert {"edge_tan.runtime.tracker", "edge_tan.runtime.registry", "edge_tan.runtime.open"} <= reach
    assert {layer_of(m) for m in reach} == {"runtime"}, sorted(m for m in reach if layer_of(m) != "runtime")


def test_the_layer_check_sees_a_function_level_import(tmp_path):
    src = tmp_path / "tracker.py"
    src.write_text("def f():\n    from edge_tan.targets.opener import open_model\n")
    mods = {"edge_tan.runtime.tracker": src, "edge_tan.targets.opener": src}
    graph = {"edge_tan.runtime.tracker": imports_of("edge_tan.runtime.tracker", src, mods)}
    assert layer_violations(graph) == ["edge_tan.runtime.tracker (runtime) imports edge_tan.targets.opener (targets)"]
    assert layer_violations({"edge_tan.export.x": {"edge_tan.targets.y"}, "edge_tan.targets.y": {"edge_tan.export.x"},
                             "edge_tan.dataset": {"edge_tan.cli"}, "edge_tan.cli": {"edge_tan.bench.run"}}) == [
        "edge_tan.dataset (core) imports edge_tan.cli (app)",
        "edge_tan.export.x (export) imports edge_tan.targets.y (targets)",
        "edge_tan.targets.y (targets) imports edge_tan.export.x (export)"]


def test_every_package_folder_is_in_the_wheel():
    """A subpackage missing from pyproject's package list works in a checkout and is absent from the wheel."""
    listed = {d.resolve() for d in package_dirs().values()}
    roots = {d for pkg, d in package_dirs().items() if "." not in pkg or pkg.count(".") == 1}
    found = {init.parent.resolve() for r in roots for init in r.rglob("__init__.py") if "__pycache__" not in init.parts}
    assert found <= listed, sorted(str(p) for p in found - listed)
