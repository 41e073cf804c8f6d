"""A serving engine's statistics (specviz/ui/engine.py, on Statistics and Compare): every sample engine
file renders, and the side-by-side table uses one definition."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from specviz.formats.runsummary import load_summary
from specviz.trace import load
from specviz.ui import engine
from tests.apptestkit import ok

ENGINES = Path(__file__).parents[1] / "data" / "engines"
SAMPLES = sorted(p.name for p in ENGINES.iterdir() if p.is_file())
TINY = Path(__file__).parents[1] / "data" / "valid" / "tiny.json"


def _render(name: str) -> None:
    from pathlib import Path

    from specviz.formats.runsummary import load_summary
    from specviz.trace import load
    from specviz.ui import engine

    root = Path.cwd() / "tests" / "data"
    rs = load_summary(root / "engines" / name)
    engine.show_run_summary(rs, [("A · tiny", load(root / "valid" / "tiny.json"))], "compare")


@pytest.mark.parametrize("name", SAMPLES)
def test_every_engine_sample_renders(name: str) -> None:
    at = AppTest.from_function(_render, args=(name,), default_timeout=30)
    ok(at.run())
    metrics = {m.label: m.value for m in at.metric}
    rs = load_summary(ENGINES / name)
    assert metrics["drafted tokens"] == f"{rs['draft_tokens']:,}"
    assert any("A run summary\\: totals, not steps" in m.value for m in at.markdown)
    assert len(at.dataframe) == 1  # beside the trace


def test_side_by_side_uses_the_engines_definition_of_per_position_acceptance() -> None:
    rs = load_summary(ENGINES / "vllm_metrics.prom")
    trace = load(TINY)
    table = engine.side_by_side(rs, [("A · tiny", trace)])
    rows = dict(zip(table[""], table["A · tiny"], strict=True))
    drafting = [s for s in trace["steps"] if s["draft"]]
    share = sum(s["n_accepted"] > 0 for s in drafting) / len(drafting)
    assert rows["draft position 1 accepted (share of drafting steps)"] == f"{share:.1%}"
    theirs = dict(zip(table[""], table["vllm (run summary)"], strict=True))
    assert (
        theirs["acceptance rate (accepted / drafted)"] == "61.7%"
        and theirs["tokens per step (bonus included)"] == "2.85"
    )


def test_a_broken_engine_file_is_one_line_of_safe_text() -> None:
    out = engine.read_summary(
        "x.log", b"SpecDecoding metrics: Mean acceptance length: <b>nan</b>, Accepted: 1 tokens\n"
    )
    assert isinstance(out, str) and "<b>" not in out and "\n" not in out
