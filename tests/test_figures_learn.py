"""The learning pages' figures: pure, the theory's numbers, and hostile trace text escaped."""

from __future__ import annotations

import copy
import json

import pytest

from specviz import figures as fg
from specviz import figures_learn as fl
from specviz import theory
from specviz.trace import Trace

HOSTILE = "<script>alert(1)</script>"


def evil_trace() -> Trace:
    trace = copy.deepcopy(fg.toy_trace())
    trace["meta"]["target"]["name"] = HOSTILE
    for step in trace["steps"]:
        for d in step["draft"]:
            d["token"] = HOSTILE
        if step.get("next"):
            step["next"]["token"] = HOSTILE
    return trace


def ys(fig, name_start: str) -> list[float]:
    return list(next(t for t in fig.data if (t.name or "").startswith(name_start)).y)


def test_tokens_and_speedup_curves_are_the_formulas():
    fig = fl.tokens_figure(0.7, 4, max_gamma=8)
    assert ys(fig, "theory") == pytest.approx([theory.expected_tokens(0.7, g) for g in range(1, 9)])
    fig = fl.speedup_figure(0.7, 0.05, 4, max_gamma=8)
    assert ys(fig, "theory") == pytest.approx([theory.speedup(0.7, g, 0.05) for g in range(1, 9)])
    g, s = theory.best_gamma(0.7, 0.05, 8)
    assert ys(fig, "best") == pytest.approx([s]) and next(t for t in fig.data if t.name.startswith("best")).x == (g,)


@pytest.mark.parametrize("unit", ["passes", "positions", "compute"])
def test_budget_bars(unit):
    fig = fl.budget_figure(0.8, 120, unit, c=0.05, max_gamma=6)
    assert list(fig.data[0].y) == pytest.approx([theory.budget_yield(0.8, g, 120, unit, 0.05) for g in range(1, 7)])


def test_divergence():
    assert fl.divergence([1, 2, 3], [1, 2, 3]) is None
    assert fl.divergence([1, 2, 3], [1, 5, 3]) == 1
    assert fl.divergence([1, 2], [1, 2, 3]) == 2
    assert fl.divergence([], []) is None


def test_hostile_text_is_escaped_in_every_figure():
    trace = evil_trace()
    m = theory.measure(trace, HOSTILE)
    prov = fg.provenance(trace)
    figs = [
        fl.tokens_figure(0.5, 4, [m]),
        fl.compare_timeline_figure([(HOSTILE, prov), ("b", prov)], 0, 30, [None, 1], (HOSTILE, [HOSTILE] * 5)),
        fl.compare_progress_figure([(HOSTILE, trace), ("b", trace)]),
        fl.sweep_figure(
            [
                fl.SweepRow(HOSTILE, 4, "sampling", 10, 5, 1.0, 0.5, 0.01, 2.0, 1.9, 1.8, 1.5),
            ],
            8.0,
        ),
    ]
    for fig in figs:
        text = json.dumps(fig.to_plotly_json(), ensure_ascii=False)
        assert "<script>" not in text
        # the sweep figure names its runs "run N" (the table gives their settings): no label from the run at all
        assert "&lt;script&gt;" in text or fig is figs[-1]


def test_compare_timeline_rows_and_reference():
    trace = fg.toy_trace()
    prov = fg.provenance(trace)
    fig = fl.compare_timeline_figure([("A", prov), ("B", prov)], 0, 30, [None, None, 2], ("alone", ["x"] * len(prov)))
    assert list(fig.layout.yaxis.ticktext) == ["alone", "A", "B"]
    assert any(t.name == "evaluation model alone" for t in fig.data)
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].y0 == pytest.approx(2 - 0.45)


def test_summary_html_escapes_trace_text():
    page = fl.summary_html(evil_trace(), HOSTILE)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.startswith("<!doctype html>") and "n_accepted per step" in page


def test_compare_timeline_shows_long_tokens_whole():
    """Public report: Compare cut tokens like "␣specif…" (8 characters in a 30-position window)."""
    prov = [fg.OutTok(" specification", 1, "accepted", 0), fg.OutTok(" a", 2, "correction", 0)]
    fig = fl.compare_timeline_figure([("A", prov)])
    shown = [t for tr in fig.data for t in tr.text]
    assert "␣specification" in shown and not any("…" in t for t in shown)
    assert fig.layout.xaxis.range[1] - fig.layout.xaxis.range[0] <= fl.COMPARE_WIDTH + 1
