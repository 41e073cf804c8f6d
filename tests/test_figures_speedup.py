"""specviz.figures.speedup: the Speedup lab's curves are the theory's numbers; names from traces escaped."""

from __future__ import annotations

import json

import pytest

from specviz import theory
from specviz.figures import speedup as fspeedup
from tests.figkit import HOSTILE, evil_trace


def ys(fig, name_start: str) -> list[float]:
    return list(next(t for t in fig.data if (t.name or "").startswith(name_start)).y)


def test_tokens_and_speedup_curves_are_the_formulas():
    fig = fspeedup.tokens_figure(0.7, 4, max_gamma=8)
    assert ys(fig, "theory") == pytest.approx([theory.expected_tokens(0.7, g) for g in range(1, 9)])
    fig = fspeedup.speedup_figure(0.7, 0.05, 4, max_gamma=8)
    assert ys(fig, "theory") == pytest.approx([theory.speedup(0.7, g, 0.05) for g in range(1, 9)])
    g, s = theory.best_gamma(0.7, 0.05, 8)
    assert ys(fig, "best") == pytest.approx([s]) and next(t for t in fig.data if t.name.startswith("best")).x == (g,)


@pytest.mark.parametrize("unit", ["passes", "positions", "compute"])
def test_budget_bars(unit):
    fig = fspeedup.budget_figure(0.8, 120, unit, c=0.05, max_gamma=6)
    assert list(fig.data[0].y) == pytest.approx([theory.budget_yield(0.8, g, 120, unit, 0.05) for g in range(1, 7)])


def test_hostile_text_is_escaped_in_the_lab_and_the_sweep():
    m = theory.measure(evil_trace(), HOSTILE)
    lab = fspeedup.tokens_figure(0.5, 4, [m])
    sweep = fspeedup.sweep_figure(
        [fspeedup.SweepRow(HOSTILE, 4, "sampling", 10, 5, 1.0, 0.5, 0.01, 2.0, 1.9, 1.8, 1.5)], 8.0
    )
    for fig in (lab, sweep):
        assert "<script>" not in json.dumps(fig.to_plotly_json(), ensure_ascii=False)
    assert "&lt;script&gt;" in json.dumps(lab.to_plotly_json(), ensure_ascii=False)
    # the sweep figure names its runs "run N" (the table gives their settings): no label from the run at all
