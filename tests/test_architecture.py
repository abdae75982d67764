"""The package's layering, read from the import graph (README "Architecture"): the core imports no Lightning, the
two ways (``curvature/``, ``hessian/``) import neither each other nor ``sampling/``, and no module imports itself
back through others (function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "landscape"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in the file, as absolute dotted names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)  # `from . import x` names a module
    return out


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in modules and i != m} for m, p in modules.items()}


def test_the_core_imports_no_lightning():
    for path in PACKAGE.rglob("*.py"):
        bad = {i for i in _imports(path) if i.split(".")[0] in ("lightning", "pytorch_lightning")}
        assert not bad, f"{_module_name(path)} imports {bad}"


def test_curvature_and_hessian_are_independent_of_each_other_and_of_sampling():
    above = ("landscape.sampling", "landscape.analysis", "landscape.validation", "landscape.report")
    rules = {
        "landscape.curvature": ("landscape.hessian", *above),
        "landscape.hessian": ("landscape.curvature", *above),
    }
    for module, deps in _graph().items():
        for package, banned in rules.items():
            if module.startswith(package + ".") or module == package:
                bad = {d for d in deps if d.startswith(banned)}
                assert not bad, f"{module} imports {bad}"
    # curvature/ is numpy-only science: nothing from the project outside itself
    for module, deps in _graph().items():
        if module.startswith("landscape.curvature"):
            assert all(d.startswith("landscape.curvature") for d in deps), f"{module} imports {deps}"


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                cycle = stack[stack.index(d) :] + [d] if d in stack else [m, d]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if d not in state:
                visit(d, stack + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
