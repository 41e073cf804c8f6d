"""specviz.figures.palette: one legend everywhere. In every figure of the Speedup lab, Compare, the
tree and Home, a mark that is not a token's outcome never takes an outcome's colour or the bonus ★."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest

from specviz import figures as fg
from specviz.core import theory
from specviz.figures import compare as fcompare
from specviz.figures import palette
from specviz.figures import speedup as fspeedup
from specviz.figures import tree as ftree
from specviz.trace import load

ROOT = Path(__file__).resolve().parents[2]
NEUTRAL_MARKS: dict[str, Any] = {
    "SERIES": palette.SERIES,
    "IDEAL_LINE": palette.IDEAL_LINE,
    "MEASURED_LINE": palette.MEASURED_LINE,
    "BASELINE_LINE": palette.BASELINE_LINE,
    "CHOSEN_MARKER": palette.CHOSEN_MARKER,
    "CURRENT_MARKER": palette.CURRENT_MARKER,
    "COPIED_MARKER": palette.COPIED_MARKER,
    "MEASURED_MARKER": palette.MEASURED_MARKER,
    "REFERENCE_MARKER": palette.REFERENCE_MARKER,
}


def _values(x: Any) -> list[Any]:
    if x is None:
        return []
    return list(x) if isinstance(x, (list, tuple)) else [x]


def colours(trace: Any) -> list[str]:
    """Every colour a trace draws with: its markers, their outlines and its line."""
    found: list[Any] = []
    marker, line = getattr(trace, "marker", None), getattr(trace, "line", None)
    if marker is not None:
        found += _values(marker.color)
        if getattr(marker, "line", None) is not None:
            found += _values(marker.line.color)
    if line is not None:
        found += _values(line.color)
    return [str(c).upper() for c in found if isinstance(c, str)]


def symbols(trace: Any) -> list[str]:
    marker = getattr(trace, "marker", None)
    return [str(s) for s in _values(getattr(marker, "symbol", None))] if marker is not None else []


def is_outcome(trace: Any) -> bool:
    """A trace that draws tokens' outcomes: named by the palette's labels or grouped by a Kind."""
    return trace.legendgroup in palette.KINDS or trace.name in palette.LABELS.values()


def owned_figures() -> Iterator[tuple[str, go.Figure]]:
    """Every figure of figures/speedup, compare, tree and home, with measured points and costs on."""
    toy = fg.toy_trace()
    tree = load(ROOT / "assets" / "traces" / "tree-sampling.json.gz")
    greedy = load(ROOT / "assets" / "traces" / "greedy.json.gz")
    m = theory.measure(greedy, "greedy")
    costs = fspeedup.PassCosts({1: 40.0, 5: 60.0, 9: 80.0}, "a test", "a test machine")
    yield "tokens", fspeedup.tokens_figure(0.7, 4, [m])
    yield "speedup", fspeedup.speedup_figure(0.7, 0.05, 4, costs=costs)
    for unit in ("passes", "positions", "compute"):
        yield f"budget {unit}", fspeedup.budget_figure(0.7, 100, unit, 0.05)  # type: ignore[arg-type]
    row = fspeedup.SweepRow("γ = 4", 4, "sampling", 10, 5, 1.0, 0.5, 0.01, 2.0, 1.9, 1.8, 1.5)
    yield "sweep", fspeedup.sweep_figure([row, row], 8.0)
    prov = fg.provenance(greedy)
    yield (
        "compare timeline",
        fcompare.compare_timeline_figure(
            [("A", prov), ("B", fg.provenance(toy))], 0, 20, [None, None, 2], ("alone", ["x"] * len(prov))
        ),
    )
    yield "compare progress", fcompare.compare_progress_figure([("A", greedy), ("B", toy), ("C", tree)])
    for k in range(len(tree["steps"])):
        yield f"tree {k}", ftree.tree_figure(tree, k)
    yield "tree mask", ftree.tree_mask_figure(tree, 0)
    yield "chain as tree", ftree.tree_figure(toy, 0)
    auto = {
        "costs_ms": {"1": 90.0, "8": 140.0, "64": 330.0},
        "candidates": [
            {"topk": k, "nodes": n, "tokens_per_step": 2.0, "step_ms": 200.0, "tokens_per_s": 10.0 + n}
            for k in (1, 2, 4)
            for n in (4, 8)
        ],
        "chosen": "dynamic:8:8:4",
        "alone_ms": 80.0,
    }
    yield "sizing", fspeedup.sizing_figure(auto)
    yield "home", fg.step_picture(toy, 0)


def test_the_neutral_marks_never_reuse_an_outcome():
    for name, mark in NEUTRAL_MARKS.items():
        found = list(mark) if isinstance(mark, tuple) else [mark.get("color")]
        assert all(str(c).upper() not in palette.OUTCOME_COLORS for c in found), name
        assert mark.get("symbol") not in palette.OUTCOME_SYMBOLS if isinstance(mark, dict) else True, name
    assert len(set(palette.SERIES)) == len(palette.SERIES)
    assert palette.SYMBOLS["bonus"] in palette.OUTCOME_SYMBOLS


@pytest.mark.parametrize(("name", "fig"), list(owned_figures()), ids=lambda x: x if isinstance(x, str) else "")
def test_no_figure_draws_a_non_outcome_in_an_outcome_colour_or_the_star(name: str, fig: go.Figure):
    for trace in fig.data:
        if is_outcome(trace):
            kind = trace.legendgroup if trace.legendgroup in palette.KINDS else None
            # an outcome trace draws its own kind, and only the bonus is a star
            if any(s in palette.OUTCOME_SYMBOLS for s in symbols(trace)):
                assert kind == "bonus" or trace.name == palette.LABELS["bonus"], (name, trace.name)
            continue
        bad = [c for c in colours(trace) if c in palette.OUTCOME_COLORS]
        assert not bad, (name, trace.name, bad)
        stars = [s for s in symbols(trace) if s in palette.OUTCOME_SYMBOLS]
        assert not stars, (name, trace.name, stars)


def test_the_scan_would_catch_the_old_defects():
    """The check itself: a best-γ star in the bonus colour, or a trace drawn in the rejection colour, fails it."""
    star = go.Scatter(x=[1], y=[1], name="best γ", marker=dict(color=palette.COLORS["bonus"], symbol="star"))
    series = go.Scatter(x=[1], y=[1], name="A · trace", line=dict(color=palette.COLORS["rejected"]))
    assert not is_outcome(star) and symbols(star) == ["star"] and colours(star) == [palette.COLORS["bonus"]]
    assert not is_outcome(series) and colours(series) == [palette.COLORS["rejected"]]
