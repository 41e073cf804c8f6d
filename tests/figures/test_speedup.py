"""specviz.figures.speedup: the Speedup lab's curves are the theory's numbers; names from traces escaped."""

from __future__ import annotations

import json

import pytest

from specviz.core import theory
from specviz.figures import speedup as fspeedup
from specviz.figures.palette import CHOSEN_MARKER, MEASURED_MARKER
from tests.figkit import HOSTILE, evil_trace


def ys(fig, name_start: str) -> list[float]:
    return list(next(t for t in fig.data if (t.name or "").startswith(name_start)).y)


def test_tokens_and_speedup_curves_are_the_formulas():
    fig = fspeedup.tokens_figure(0.7, 4, max_gamma=8)
    assert ys(fig, "theory") == pytest.approx([theory.expected_tokens(0.7, g) for g in range(1, 9)])
    fig = fspeedup.speedup_figure(0.7, 0.05, 4, max_gamma=8)
    assert ys(fig, "ideal (formula)") == pytest.approx([theory.speedup(0.7, g, 0.05) for g in range(1, 9)])
    g, s = theory.best_gamma(0.7, 0.05, 8)
    assert ys(fig, "best") == pytest.approx([s]) and next(t for t in fig.data if t.name.startswith("best")).x == (g,)
    assert not any(t.name == "with measured pass costs" for t in fig.data)  # no costs, no curve


def test_measured_pass_costs_are_the_theory_with_the_machines_curve():
    costs = fspeedup.PassCosts({1: 40.0, 5: 60.0, 9: 90.0}, "docs/results/pass-cost.json", "a 2-CPU test machine")
    # the step: γ draft tokens + one pass over γ + 1 positions (theory.step_cost_ms); c = 0.05 of the pass over
    # 4 + 1 positions where it was measured (60 ms), so a draft token costs 3 ms whatever γ the curve is at
    want = [theory.expected_tokens(0.7, g) * 40.0 / theory.step_cost_ms(costs.ms, g, g, 0.05 * 60.0) for g in (1, 4, 8)]
    assert [costs.speedup(0.7, g, 0.05, 4) for g in (1, 4, 8)] == pytest.approx(want)
    assert costs.ratio(5) == pytest.approx(1.5) and costs.ratio(1) == 1.0
    # a flat curve is the textbook's assumption: the two curves agree
    flat = fspeedup.PassCosts({1: 50.0}, "flat", "nowhere")
    assert [flat.speedup(0.6, g, 0.1, 4) for g in range(1, 9)] == pytest.approx(
        [theory.speedup(0.6, g, 0.1) for g in range(1, 9)]
    )
    fig = fspeedup.speedup_figure(0.7, 0.05, 4, max_gamma=8, costs=costs)
    measured = next(t for t in fig.data if t.name == "with measured pass costs")
    assert "a 2-CPU test machine" in measured.hovertemplate and list(measured.customdata) == pytest.approx(
        [costs.ratio(g + 1) for g in range(1, 9)]
    )
    assert list(measured.y) == pytest.approx([costs.speedup(0.7, g, 0.05, 4) for g in range(1, 9)])
    g, s = costs.best_gamma(0.7, 0.05, 4, 8)
    best = next(t for t in fig.data if t.name.startswith("best γ with measured costs"))
    assert best.x == (g,) and best.y == pytest.approx((s,))
    # the ideal best and the measured best: triangles, never the bonus ★
    assert {t.marker.symbol for t in fig.data if t.name.startswith("best")} == {"triangle-up", "triangle-up-open"}


def test_the_machine_name_is_escaped():
    costs = fspeedup.PassCosts({1: 1.0, 2: 2.0}, HOSTILE, HOSTILE)
    text = json.dumps(fspeedup.speedup_figure(0.5, 0.1, 3, costs=costs).to_plotly_json(), ensure_ascii=False)
    assert "<script>" not in text and "&lt;script&gt;" in text


@pytest.mark.parametrize("unit", ["passes", "positions", "compute"])
def test_budget_bars(unit):
    fig = fspeedup.budget_figure(0.8, 120, unit, c=0.05, max_gamma=6)
    ys = [theory.budget_yield(0.8, g, 120, unit, 0.05) for g in range(1, 7)]
    assert list(fig.data[0].y) == pytest.approx(ys)
    best = max(range(6), key=lambda i: (ys[i], -i))  # the best bar black, the others neutral grey
    assert [c == CHOSEN_MARKER["color"] for c in fig.data[0].marker.color] == [i == best for i in range(6)]


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


def test_numerics_side_by_side_draws_each_dtypes_measured_curve():
    """Issue 20: the lab shows why a CPU without bf16 units loses: one curve per numerics' pass costs."""
    fp32 = fspeedup.PassCosts({1: 43.5, 5: 71.1, 9: 85.1}, "docs/results/pass-cost.json, float32", "m")
    bf16 = fspeedup.PassCosts({1: 50.8, 5: 54.8, 9: 55.1}, "docs/results/pass-cost.json, bf16", "m")
    fig = fspeedup.numerics_figure(0.28, 0.036, 4, {"float32": fp32, "bfloat16 one-token rows": bf16}, max_gamma=8)
    curves = {t.name: list(t.y) for t in fig.data}
    assert set(curves) == {"ideal (formula)", "float32", "bfloat16 one-token rows"}
    assert curves["float32"][3] == pytest.approx(fp32.speedup(0.28, 4, 0.036, 4))
    assert curves["float32"][3] < 1.0 < curves["bfloat16 one-token rows"][3] < curves["ideal (formula)"][3]


def test_sizing_figure_marks_the_choice():
    auto = {
        "costs_ms": {"1": 90.0, "8": 140.0, "64": 330.0},
        "candidates": [
            {"topk": 4, "nodes": 4, "tokens_per_step": 2.0, "step_ms": 200.0, "tokens_per_s": 10.0},
            {"topk": 1, "nodes": 4, "tokens_per_step": 2.2, "step_ms": 190.0, "tokens_per_s": 11.6},
            {"topk": 4, "nodes": 8, "tokens_per_step": 2.8, "step_ms": 210.0, "tokens_per_s": 13.3},
        ],
        "chosen": "dynamic:8:8:4",
    }
    fig = fspeedup.sizing_figure(auto)
    chosen = [t for t in fig.data if t.marker is not None and t.marker.symbol == CHOSEN_MARKER["symbol"]]
    assert len(chosen) == 1 and chosen[0].x == (8,)  # the chosen-setting triangle: the ★ is the bonus token's
    assert not any(t.marker is not None and t.marker.symbol == "star" for t in fig.data)
    assert fspeedup.sizing_figure({}).data == ()
    assert not fig.layout.shapes  # the model alone was not timed (older traces)
    timed = fspeedup.sizing_figure({**auto, "alone_ms": 80.0})
    assert timed.layout.shapes[0].y0 == 12.5 and "12.5 tok/s" in timed.layout.annotations[-1].text


def test_sizing_figure_draws_the_race_that_checked_the_prediction():
    auto = {
        "costs_ms": {"1": 90.0, "8": 140.0},
        "candidates": [{"topk": 4, "nodes": 4, "tokens_per_step": 1.6, "step_ms": 50.0, "tokens_per_s": 31.5}],
        "chosen": "chain",
        "predicted": "dynamic:4:8:4",
        "race": {
            "predicted": {"shape": "dynamic:4:8:4", "tokens_per_s": 30.1},
            "chain": {"shape": "chain, gamma 4 <b>", "gamma": 4, "tokens_per_s": 38.2},
            "kept": "chain",
        },
    }
    fig = fspeedup.sizing_figure(auto)
    names = [t.name for t in fig.data]
    assert "predicted best: dynamic:4:8:4" in names
    measured = next(t for t in fig.data if t.name == "measured end to end on the calibration text")
    assert measured.marker.symbol == MEASURED_MARKER["symbol"] and list(measured.y) == [30.1, 38.2]
    assert "(runs)" in measured.text[1] and "&lt;b&gt;" in measured.text[1] and "<b>" not in measured.text[1]
    # a hostile trace's race of the wrong types draws no squares, and no traceback
    assert len(fspeedup.sizing_figure({**auto, "race": {"predicted": 1, "chain": "x"}}).data) == len(fig.data) - 1
