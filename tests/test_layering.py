"""Dependencies go one way: the kernel imports nothing else, parts import the kernel, no cycles.

The import graph is read from the source (every ``import``, lazy ones inside functions too), so
a new edge fails here before it becomes a tangle. ``ALLOWED`` is the architecture in one table:
which part may import which. The command registry (``carbonpipe.cli``) imports parts by name
through ``importlib`` and is not an edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from carbonpipe.core.config import REPO_ROOT

PACKAGES = ("carbonpipe", "collector", "spark_jobs", "dashboard")

# part -> the parts it may import (besides itself). Longest matching prefix names a module's part.
ALLOWED: dict[str, set[str]] = {
    "carbonpipe.core": set(),
    "carbonpipe.intensity": {"carbonpipe.core"},
    "carbonpipe.scheduling": {"carbonpipe.core", "carbonpipe.intensity"},
    "collector": {"carbonpipe.core", "carbonpipe.intensity", "carbonpipe.scheduling"},
    "spark_jobs": {"carbonpipe.core", "carbonpipe.intensity", "carbonpipe.query"},  # table printer
    "carbonpipe.query": {"carbonpipe.core"},  # reads the hot store through its read contract
    "carbonpipe.services": {"carbonpipe.core"},
    # budgets, alerts, reports; the cold store's runs through ``spark_jobs.cold_runs`` (lazy)
    "carbonpipe.reporting": {"carbonpipe.core", "carbonpipe.query", "spark_jobs"},
    "dashboard": {"carbonpipe.core", "carbonpipe.query", "carbonpipe.scheduling",
                  "carbonpipe.reporting"},
    "carbonpipe.cli": {"carbonpipe.core"},
    "collector.__main__": {"carbonpipe.cli"},  # ``python -m collector`` = ``carbonpipe``
    "carbonpipe": {"carbonpipe.core", "collector"},  # the package's lazy ``track`` facade
}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (REPO_ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Project modules ``name`` imports (``from a import b`` counts ``a.b`` when it is a module)."""
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_pkg else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]  # fmt: skip
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                yield t


def part_of(module: str) -> str:
    return max((p for p in ALLOWED if module == p or module.startswith(p + ".")), key=len)


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: set(imports(m, p, known)) for m, p in mods.items()}


def test_every_import_follows_the_allowed_direction() -> None:
    bad = []
    for mod, deps in graph().items():
        src = part_of(mod)
        for dep in deps:
            dst = part_of(dep)
            if dst != src and dst not in ALLOWED[src]:
                may = sorted(ALLOWED[src]) or "nothing"
                bad.append(f"{mod} -> {dep}  ({src} may import {may})")
    assert not bad, "imports against the layering:\n  " + "\n  ".join(sorted(bad))


def test_no_import_cycles() -> None:
    g = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    # A package's __init__ re-exporting a submodule that imports a sibling is not a cycle of
    # modules; only cycles between modules count.
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    code = "def f():\n    from carbonpipe.core import units\n    import spark_jobs.stream\n"
    src.write_text(code, encoding="utf-8")
    known = {"carbonpipe.core.units", "spark_jobs.stream", "carbonpipe.core", "x.m"}
    assert set(imports("x.m", src, known)) == {"carbonpipe.core.units", "spark_jobs.stream"}
