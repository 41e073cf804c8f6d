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
        "rate",
        "read_file",
        "rule_of",
        "summarize",
        "undefined_words",
        "validate",
        "whole_text",
    ],
    "specviz.cli": ["main"],
    "specviz.warp": ["UNTEMPERED", "Sampling", "sample", "warp"],
    "specviz.runsummary": [
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
    "specviz.rules": [
        "RULES",
        "Rule",
        "Verdict",
        "accept_greedy",
        "accept_sampling",
        "accept_threshold",
        "accept_typical",
        "make_rule",
        "n_leading",
        "residual",
    ],
    "specviz.drafters": ["Drafter", "ModelDrafter", "NgramDrafter", "Proposal", "TreeDrafter", "chain_tree"],
    "specviz.tree": [
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
    "specviz.decoder": ["DecodeConfig", "GammaPolicy", "speculative_decode", "target_decode"],
    "specviz.record": ["Recording", "draft_meta", "make_drafter"],
    "specviz.feature_draft": [
        "FEATURE_DIR",
        "FeatureDraft",
        "FeatureDrafter",
        "FeatureHead",
        "HeadConfig",
        "is_head_dir",
        "load_feature_draft",
        "save_head",
    ],
    "specviz.models": [
        "DEFAULT",
        "DEFAULT_DRAFT",
        "FEATURE",
        "STANDALONE",
        "PRESETS",
        "PRESET_NAMES",
        "CausalLM",
        "ModelLoadError",
        "TokenMap",
        "load_model",
        "load_pair",
        "pick_device",
        "pick_dtype",
        "pick_numerics",
        "ROWS_ATTENTION",
        "resolve_draft",
        "resolve_preset",
        "rows_attention",
    ],
}


RUNSUMMARY = sorted((Path(specviz.__file__).parent / "runsummary").glob("*.py"))


@pytest.mark.parametrize("name", sorted(PINNED))
def test_exported_names_are_pinned(name: str) -> None:
    # import_module, not attribute access: `specviz.warp` the attribute is the function warp()
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(PINNED[name])
    assert len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ names {attr}, which does not exist"


def test_every_declared_all_resolves() -> None:
    """The modules not pinned above (the app's, the benchmark's) still export only what exists."""
    for info in pkgutil.iter_modules(specviz.__path__, "specviz."):
        if info.name in PINNED or info.name == "specviz.__main__":
            continue
        module = importlib.import_module(info.name)
        for attr in getattr(module, "__all__", []):
            assert hasattr(module, attr), f"{info.name}.__all__ names {attr}, which does not exist"


TRACE_MODULES = sorted(f"trace/{p.name}" for p in (Path(specviz.__file__).parent / "trace").glob("*.py"))


@pytest.mark.parametrize("path", [*TRACE_MODULES, "eventlog.py", *(f"runsummary/{p.name}" for p in RUNSUMMARY)])
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
    """Only specviz.models imports transformers and only the UI imports streamlit."""
    code = "import sys, specviz, specviz.trace, specviz.cli; print(sorted({'transformers', 'streamlit'} & set(sys.modules)))"
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
