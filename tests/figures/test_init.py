"""The figures package's structure: a module per page with figures of its own, shared modules that
never import a page's module, submodules that import each other directly, and a map that is true."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from specviz import figures as fg

PACKAGE = Path(fg.__file__).resolve().parent
PAGES = {"home", "replay", "stats", "speedup", "compare"}
SHARED = {"palette", "text", "step", "gaps", "timeline", "tree", "toy", "spec"}


def figure_imports(module: Path) -> set[str]:
    """The specviz.figures modules a module imports, by name ("" for the package itself)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "specviz.figures":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("specviz.figures."):
            found.add(node.module.removeprefix("specviz.figures."))
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module == "specviz"
            and any(a.name == "figures" for a in node.names)
        ):
            found.add("")
    return found


def test_every_module_is_in_the_map_and_the_map_names_only_modules():
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert modules == PAGES | SHARED
    table = [line.split("|")[1].strip() for line in (fg.__doc__ or "").splitlines() if line.startswith("| ")]
    assert {row.removesuffix(".py") for row in table if row.endswith(".py")} == modules


def test_shared_modules_never_import_a_page_and_no_module_imports_the_package():
    for name in sorted(PAGES | SHARED):
        imported = figure_imports(PACKAGE / f"{name}.py")
        assert "" not in imported and not (imported - PAGES - SHARED), name  # submodules only, never __init__
        if name in SHARED:
            assert not imported & PAGES, name


def test_the_package_reexports_its_modules_names():
    for name in sorted(PAGES | SHARED):
        module = importlib.import_module(f"specviz.figures.{name}")
        for attr in module.__all__:
            assert hasattr(module, attr), f"{name}.__all__ names {attr}, which does not exist"
    for attr in fg.__all__:
        obj = getattr(fg, attr)
        home = [n for n in PAGES | SHARED if attr in importlib.import_module(f"specviz.figures.{n}").__all__]
        assert len(home) == 1, (attr, home)  # one module defines it
        assert getattr(importlib.import_module(f"specviz.figures.{home[0]}"), attr) is obj
    assert len(set(fg.__all__)) == len(fg.__all__)
