"""What every page shares (specviz/ui/common.py) and the UI layer's structure: safe markdown, thin
pages, one file per page with shared modules that never import a page module, the config,
presentation mode."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from specviz.ui import common
from tests.apptestkit import ok, open_page

ROOT = Path(__file__).resolve().parents[2]
PAGES = {"home", "live", "browser", "replay", "stats", "exercises", "speedup", "compare"}
SHARED = {"common", "traces", "runs", "engine", "glossary"}


def test_markdown_escape_neutralises_everything():
    out = common.md_escape("**b** _i_ [x](y) <b> :red[x] $x$ # h `c` \\")
    assert "**" not in out.replace("\\*", "") and "<b>" not in out and ":red[" not in out
    md = common.tokens_md([(" the", "accepted"), ("\n", "correction"), ("]x[", "bonus")])
    assert md.count(":green-background[") == 1 and ":blue-background[⏎]" in md and "\\]x\\[" in md


def test_pages_are_thin_and_only_ui_imports_streamlit():
    for page in sorted((ROOT / "pages").glob("*.py")):
        tree = ast.parse(page.read_text())
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert len(funcs) == 1, page.name
        assert funcs[0].end_lineno - funcs[0].lineno < 100, page.name
    for module in sorted((ROOT / "specviz").rglob("*.py")):
        imports = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(module.read_text()))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
        }
        in_ui = module.parent == ROOT / "specviz" / "ui" and module.name != "__init__.py"  # __init__: a map only
        assert ("streamlit" in imports) == in_ui, module.name
    app = (ROOT / "app.py").read_text()
    assert all(f'url_path="{p}"' in app for p in ("", "live", "replay", "stats"))


def ui_imports(module: Path) -> set[str]:
    """The specviz.ui modules a module imports, by name."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "specviz.ui":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("specviz.ui."):
            found.add(node.module.removeprefix("specviz.ui.").split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {
                a.name.removeprefix("specviz.ui.").split(".")[0] for a in node.names if a.name.startswith("specviz.ui.")
            }
    return found


def test_every_page_has_its_file_and_shared_modules_never_import_a_page():
    modules = {p.stem for p in (ROOT / "specviz" / "ui").glob("*.py")}
    assert {p.stem for p in (ROOT / "pages").glob("*.py")} == PAGES
    assert modules >= PAGES | SHARED
    for name in modules - PAGES:  # every other module is shared, whoever adds it
        assert not ui_imports(ROOT / "specviz" / "ui" / f"{name}.py") & PAGES, name
    for page in PAGES:  # each page script calls into its own room
        assert page in ui_imports(ROOT / "pages" / f"{page}.py"), page


def test_config_hides_tracebacks_and_keeps_xsrf():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["server"]["enableXsrfProtection"] is True
    assert 1 <= cfg["server"]["maxUploadSize"] <= 200
    from streamlit import config

    config.get_config_options(force_reparse=True)
    assert config.get_option("client.showErrorDetails") == "none"


def test_presentation_mode_is_constant_css_and_carries_over():
    at = open_page("pages/speedup.py")
    assert not at.get("html")
    ok(at.toggle(key="presentation_widget").set_value(True).run())
    styles = at.get("html")
    assert styles and all(s.proto.body == common.PRESENTATION_CSS for s in styles)
    for page in ("pages/exercises.py", "pages/replay.py", "pages/stats.py", "pages/live.py", "pages/home.py"):
        ok(at.switch_page(page).run())
        assert at.toggle(key="presentation_widget").value is True, page
        assert at.get("html"), page
