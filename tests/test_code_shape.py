"""No package function over 80 lines unless its docstring says why ("Long on purpose").

Counted from the source (ast) over every module the wheel ships (tests/test_import_graph.modules).
"""
from __future__ import annotations

import ast

from tests.test_import_graph import modules

MAX_LINES = 80
PENDING: set[str] = set()   # a function being split in parallel work may wait here; none does


def long_in(source: str, mod: str, limit: int = MAX_LINES) -> dict[str, int]:
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit and "Long on purpose" not in (ast.get_docstring(node) or ""):
                out[f"{mod}:{node.name}"] = n
    return out


def long_functions(limit: int = MAX_LINES) -> dict[str, int]:
    out = {}
    for mod, path in modules().items():
        out.update(long_in(path.read_text(), mod, limit))
    return out


def test_no_long_function_without_a_reason():
    found = long_functions()
    assert set(found) - PENDING == set(), {k: v for k, v in found.items() if k not in PENDING}


def test_the_count_sees_a_long_function_and_its_reason():
    body = "".join(f"    x{i} = {i}\n" for i in range(85))
    assert long_in(f"def f():\n{body}", "m") == {"m:f": 86}
    assert long_in(f'def f():\n    """Long on purpose: a table."""\n{body}', "m") == {}
