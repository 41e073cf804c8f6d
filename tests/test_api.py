"""The public API, pinned: a change to an exported name must be a decision, made here too."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import specviz

PINNED = {
    "specviz": [
        "FORMAT",
        "RULES",
        "VERSION",
        "Rule",
        "Sampling",
        "Trace",
        "TraceError",
        "Verdict",
        "load",
        "loads",
        "make_rule",
        "residual",
        "sample",
        "summarize",
        "validate",
        "warp",
    ],
    "specviz.trace": [
        "FORMAT",
        "VERSION",
        "JsonlWriter",
        "Parting",
        "first_parting",
        "Step",
        "StepTree",
        "TopEntry",
        "TreeNode",
        "Trace",
        "TraceError",
        "dump",
        "dumps",
        "finish",
        "load",
        "loads",
        "new_trace",
        "no_draft_words",
        "output_ids",
        "parse_line",
        "rate",
        "raw_decode",
        "read_file",
        "rule_of",
        "short",
        "summarize",
        "undefined_words",
        "validate",
        "whole_text",
    ],
    "specviz.cli": ["main"],
    "specviz.drafters.pair": ["load_pair"],
    "specviz.core.warp": ["UNTEMPERED", "Sampling", "sample", "warp"],
    "specviz.formats.runsummary": [
        "ENGINES",
        "FORMAT",
        "MAX_POSITIONS",
        "MAX_RECORDS",
        "RunSummary",
        "describe",
        "load_summary",
        "loads_summary",
        "sniff_summary",
        "summary_stats",
    ],
    "specviz.core.rules": [
        "KINDS",  # issue 24: each rule is one RuleKind in this table
        "RULES",
        "Rule",
        "RuleKind",
        "Verdict",
        "accept_greedy",
        "accept_sampling",
        "accept_threshold",
        "accept_typical",
        "make_rule",
        "n_leading",
        "residual",
    ],
    "specviz.core.drafting": ["Drafter", "Proposal", "ReadsTokensOnly", "TreeDrafter", "chain_tree"],
    "specviz.core.target": ["Target"],
    "specviz.drafters.model": ["ModelDrafter"],
    "specviz.drafters.ngram": ["DEFAULT_LOOKUP_BELOW", "LookupFallback", "NgramDrafter", "continuations"],
    "specviz.drafters.factory": ["make_drafter"],
    "specviz.core.tree": [
        "DraftTree",
        "TreeShape",
        "TreeVerdict",
        "ancestors",
        "children_of",
        "depths",
        "feed_mask",
        "grow",
        "remove_drawn",
        "tree_mask",
        "tree_positions",
        "verify_tree",
    ],
    "specviz.core.decoder": [
        "DEFAULT_CONFIDENCE",
        "DecodeConfig",
        "GammaPolicy",
        "build_config",
        "speculative_decode",
        "target_decode",
    ],
    "specviz.run.record": ["Recording"],
    "specviz.drafters.feature": [
        "FeatureModel",
        "FeatureDrafter",
        "FeatureHead",
        "HeadConfig",
        "eagle3_layers",
        "feature_words",
        "is_head_dir",
        "load_feature_draft",
        "save_head",
    ],
    "specviz.models.vocab": ["TokenMap", "differs", "vocab_fingerprint"],
    "specviz.models.gguf": ["cache_root", "converted_dir", "default_gguf_path"],
    "specviz.export.onnxgraph": ["OPSET", "Shape", "export_onnx", "input_names", "output_names", "shape_of"],
    "specviz.export.quantize": ["BLOCK", "DEFAULT_QUANT", "QUANTS", "quantize", "quantize_model"],
    "specviz.export.bundle": [
        "DRAFT_QUANT",
        "LIVE_ASSETS",
        "MANIFEST_VERSION",
        "ExportError",
        "cached_model",
        "folder_bytes",
        "write_bundle",
    ],
    "specviz.export.ortref": ["Emitted", "OrtLM", "encode", "greedy", "greedy_margins", "manifest"],
    "specviz.models.prepack": [
        "OUTPUT_BATCH",
        "PackedLinear",
        "available",
        "available_fp32",
        "pack_output",
        "packed",
        "prepack",
        "unpacked",
    ],
    "specviz.models.lean": ["LeanCache", "LeanLlama", "rms_norm", "rope", "rope_table"],
    "specviz.models.rows": ["ROWS_ATTENTION", "one_query", "rows_attention"],
    "specviz.models.lm": [
        "CausalLM",
        "hidden_of",
        "load_model",
        "pick_device",
        "pick_dtype",
        "pick_numerics",
        "ROWS_ATTENTION",
        "rows_attention",
    ],
    "specviz.models.presets": [
        "DEFAULT",
        "DEFAULT_DRAFT",
        "DRAFT_DIR",
        "FEATURE",
        "FEATURE_DIR",
        "GGUF_NAME",
        "GGUF_PACKAGE",
        "STANDALONE",
        "PRESETS",
        "PRESET_NAMES",
        "REPO_ROOT",
        "ModelLoadError",
        "NGRAM",
        "draft_ready",
        "resolve_draft",
        "resolve_preset",
    ],
}


RUNSUMMARY = sorted((Path(specviz.__file__).parent / "formats" / "runsummary").glob("*.py"))


@pytest.mark.parametrize("name", sorted(PINNED))
def test_exported_names_are_pinned(name: str) -> None:
    # import_module, not attribute access: `specviz.core.warp` the attribute is the function warp()
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(PINNED[name])
    assert len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names {attr}, which does not exist"


def test_every_declared_all_resolves() -> None:
    """The modules not pinned above (the app's, the benchmark's) still export only what exists."""
    for info in pkgutil.walk_packages(specviz.__path__, "specviz."):
        if info.name in PINNED or info.name == "specviz.__main__":
            continue
        module = importlib.import_module(info.name)
        for attr in getattr(module, "__all__", []):
            assert hasattr(module, attr), f"{info.name}.__all__ names {attr}, which does not exist"


TRACE_MODULES = sorted(f"trace/{p.name}" for p in (Path(specviz.__file__).parent / "trace").glob("*.py"))


@pytest.mark.parametrize(
    "path",
    [*TRACE_MODULES, "formats/eventlog.py", "formats/opener.py", *(f"formats/runsummary/{p.name}" for p in RUNSUMMARY)],
)
def test_trace_module_is_pure_python(path: str) -> None:
    """Traces, event logs and run summaries must be readable without torch or transformers:
    stdlib imports only (and each other; the trace package nothing but itself)."""
    tree = ast.parse((Path(specviz.__file__).parent / path).read_text())
    modules = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
        if not (isinstance(node, ast.ImportFrom) and node.level)
    }
    if path.startswith("trace/"):
        modules = {m for m in modules if not m.startswith("specviz.trace.")}  # its own modules
    imported = {m.split(".")[0] for m in modules}
    allowed = set(sys.stdlib_module_names) | {"__future__"} | (set() if path.startswith("trace/") else {"specviz"})
    assert imported <= allowed, imported


def test_package_import_stays_light() -> None:
    """Only specviz.models.lm imports transformers and only the UI imports streamlit."""
    code = "import sys, specviz, specviz.trace, specviz.cli.commands; print(sorted({'transformers', 'streamlit'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_no_source_file_holds_control_characters():
    """Review: a LaTeX string written without r"" held BEL and form-feed bytes where \\a and \\f were meant."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    bad = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
    found = [
        str(p.relative_to(root))
        for folder in ("specviz", "tests", "pages", "scripts")
        for p in (root / folder).rglob("*.py")
        if bad.search(p.read_text(encoding="utf-8"))
    ]
    assert found == []


def _import_graph() -> dict[str, set[str]]:
    """specviz module → the specviz modules it imports, counting every import: module level, inside
    functions and under TYPE_CHECKING alike (a circle hidden behind either is still a circle)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    mods: dict[str, Path] = {}
    for p in (root / "specviz").rglob("*.py"):
        name = ".".join(p.relative_to(root).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        pkg = m if p.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != m:
                    graph[m].add(t)
    return graph


def test_no_import_circle():
    """Issue 24: models → feature_draft → drafters → models and train_draft ↔ train_feature were circles
    hidden behind TYPE_CHECKING and function-level imports; a package's __init__ re-exporting its own
    modules is not a circle."""
    graph = _import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            comp.append(v)
            inner = [c for c in comp if not any(c.startswith(o + ".") for o in comp)]  # leave package re-exports out
            if len(inner) > 1:
                circles.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    assert circles == []


# folder → the folders it may import (each folder's __init__ docstring says the same in words)
LAYERS: dict[str, set[str]] = {
    "trace": set(),
    "formats": {"trace"},
    "core": {"trace"},
    "models": {"trace"},
    "figures": {"trace", "core"},
    "drafters": {"trace", "core", "models"},
    "teach": {"trace", "core", "figures", "formats"},
    "run": {"trace", "core", "models", "drafters", "formats"},
    "train": {"trace", "core", "models", "drafters"},
    "export": {"trace", "models"},
    "ui": {"trace", "core", "models", "drafters", "figures", "formats", "teach", "run"},
    "cli": {"trace", "core", "models", "drafters", "figures", "formats", "teach", "run", "export"},
}


def _folder(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_folder_has_a_layer_and_says_what_it_may_import():
    root = Path(specviz.__file__).parent
    folders = {p.parent.name for p in root.glob("*/__init__.py")}
    assert folders == set(LAYERS)
    assert {p.stem for p in root.glob("*.py")} == {"__init__", "__main__"}  # no module outside a folder
    for folder in folders:
        doc = ast.get_docstring(ast.parse((root / folder / "__init__.py").read_text(encoding="utf-8"))) or ""
        assert "Imports:" in doc, f"specviz/{folder}/__init__.py does not say what it may import"


def test_layers_import_only_downward():
    """Every import (module level, in functions, under TYPE_CHECKING) goes to the same folder or one the
    folder may import (LAYERS); only specviz/ui imports streamlit; transformers is imported by the model
    layer (models/lm.py, models/rows.py, models/gguf.py) and, for what it alone offers, by run/bench.py (HF assisted generation, the peer)
    and train/draft.py (building a Llama)."""
    root = Path(__file__).resolve().parent.parent / "specviz"
    found: dict[str, set[str]] = {"streamlit": set(), "transformers": set()}
    for p in root.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for n in names:
                top = n.split(".")[0]
                if top in found:
                    found[top].add(str(p.relative_to(root)))
    assert all(f.startswith("ui/") for f in found["streamlit"]), found["streamlit"]
    assert found["transformers"] <= {
        "models/lm.py",
        "models/rows.py",
        "models/gguf.py",
        "run/bench.py",
        "train/draft.py",
    }, found["transformers"]
    upward = sorted(
        f"{m} → {t}"
        for m, targets in _import_graph().items()
        for t in targets
        if _folder(m) in LAYERS and _folder(t) != _folder(m) and _folder(t) not in LAYERS[_folder(m)] | {""}
    )
    assert upward == []


def test_readme_layout_names_every_folder_and_module():
    """Issue 24: README's layout named 12 of 21 modules; now every folder has a row naming its modules."""
    root = Path(specviz.__file__).parent
    readme = (root.parent / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :]
    rows = {line.split("|")[1].strip().strip("`/"): line for line in layout.splitlines() if line.startswith("| `")}
    assert set(rows) == set(LAYERS)
    for folder, row in rows.items():
        if folder in ("ui", "figures"):  # their own __init__ maps every page module (tests/ui, tests/figures check)
            continue
        for p in (root / folder).glob("*.py"):
            if p.stem not in ("__init__", "__main__") and not p.stem.startswith("_"):
                assert f"`{p.stem}`" in row, f"README's layout row for {folder}/ does not name {p.stem}"
