"""The speedup model: the formulas, best γ, the fixed budget, measured points from real traces."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from specviz import figures as fg
from specviz.core import theory
from specviz.trace import summarize
from specviz.ui import traces

alphas = st.floats(0.0, 0.999)
gammas = st.integers(1, 16)
costs = st.floats(0.0, 1.0)


def test_known_values():
    assert theory.expected_tokens(0.0, 4) == 1.0  # nothing accepted: the evaluation model's token only
    assert theory.expected_tokens(1.0, 4) == 5.0  # everything accepted: γ + 1
    assert theory.expected_tokens(0.5, 1) == pytest.approx(1.5)
    assert theory.expected_tokens(0.8, 4) == pytest.approx((1 - 0.8**5) / 0.2)
    assert theory.speedup(0.8, 4, 0.05) == pytest.approx((1 - 0.8**5) / (0.2 * 1.2))
    assert theory.speedup(0.8, 4, 0.0) == theory.expected_tokens(0.8, 4)


@given(alphas, gammas)
def test_expected_tokens_is_the_geometric_sum(alpha, gamma):
    e = theory.expected_tokens(alpha, gamma)
    assert e == pytest.approx(sum(alpha**j for j in range(gamma + 1)), rel=1e-9)
    assert 1.0 <= e <= gamma + 1 + 1e-9
    assert e == pytest.approx(fg.expected_tokens(alpha, gamma))  # the statistics page agrees


@given(alphas, gammas, costs)
def test_speedup_matches_the_statistics_page(alpha, gamma, c):
    assert theory.speedup(alpha, gamma, c) == pytest.approx(fg.implied_speedup(alpha, gamma, c))


@given(alphas, costs)
def test_best_gamma_is_the_argmax(alpha, c):
    g, s = theory.best_gamma(alpha, c, 12)
    assert 1 <= g <= 12
    assert all(theory.speedup(alpha, h, c) <= s + 1e-12 for h in range(1, 13))


def test_best_gamma_moves_the_right_way():
    assert theory.best_gamma(0.9, 0.01)[0] > theory.best_gamma(0.5, 0.01)[0]  # better drafts → longer γ
    assert theory.best_gamma(0.8, 0.2)[0] < theory.best_gamma(0.8, 0.01)[0]  # dearer drafts → shorter γ


@pytest.mark.parametrize("bad", [(-0.1, 4), (1.1, 4), (0.5, -1)])
def test_bad_inputs_are_refused(bad):
    with pytest.raises(ValueError):
        theory.expected_tokens(*bad)
    with pytest.raises(ValueError):
        theory.speedup(0.5, 4, -0.1)


def test_budget_units():
    a = 0.7
    # passes: monotone in γ, each pass yields E tokens
    ys = [theory.budget_yield(a, g, 100, "passes") for g in range(1, 9)]
    assert ys == sorted(ys) and ys[3] == pytest.approx(100 * theory.expected_tokens(a, 4))
    # positions: a pass over γ drafts spends γ + 1 of them, never more tokens than positions
    assert theory.budget_yield(a, 4, 100, "positions") == pytest.approx(20 * theory.expected_tokens(a, 4))
    assert all(theory.budget_yield(a, g, 100, "positions") <= 100 for g in range(1, 13))
    # compute: budget × speedup, so its best γ is the speedup's best γ
    c = 0.05
    best = max(range(1, 13), key=lambda g: theory.budget_yield(a, g, 1000, "compute", c))
    assert best == theory.best_gamma(a, c, 12)[0]


@given(alphas, gammas)
def test_crossover_c_is_where_speedup_is_one(alpha, gamma):
    c = theory.crossover_c(alpha, gamma)
    assert theory.speedup(alpha, gamma, c) == pytest.approx(1.0)


def test_diagnose_each_case():
    assert theory.diagnose(0.3, 4, 0.01) == "low_acceptance"
    assert theory.diagnose(0.8, 4, 0.5) == "slow_draft"
    assert theory.diagnose(0.6, 12, 0.1) == "gamma_too_long"
    assert theory.diagnose(0.98, 2, 0.001) == "gamma_too_short"
    g, _ = theory.best_gamma(0.8, 0.05)
    assert theory.diagnose(0.8, g, 0.05) == "healthy"
    assert theory.diagnose(0.8, 4, None) == "healthy"  # untimed: nothing to say about cost


@pytest.mark.parametrize("name", list(traces.list_samples()))
def test_measure_real_samples(name):
    trace = traces.load_sample(name)
    assert not isinstance(trace, str)
    m = theory.measure(trace, name)
    s = summarize(trace)
    k = fg.costs(trace, s)
    assert m.name == name and m.steps == len(trace["steps"])
    assert m.alpha == pytest.approx(k.alpha) and m.tokens_per_step == pytest.approx(k.tokens_per_step)
    assert m.predicted_tokens_per_step == pytest.approx(k.expected_tokens_per_step)
    assert (m.c is None) == (k.c is None)
    if m.c is not None:
        assert m.c == pytest.approx(k.c) and m.predicted_speedup == pytest.approx(k.speedup)
        assert m.tokens_per_second is not None and m.ms_per_token == pytest.approx(1e3 / m.tokens_per_second)
    assert 0 < m.mean_drafts <= m.gamma
    assert not math.isnan(m.tokens_per_step)


def test_measure_toy_trace():
    m = theory.measure(fg.toy_trace(), "toy")
    assert m.steps == len(fg.toy_trace()["steps"])


# the α a chain needs with a machine's measured costs

FLAT = {1: 100.0, 64: 100.0}  # verification costs one pass whatever its width: the textbook's case


def test_on_a_flat_machine_the_needed_alpha_is_the_textbooks():
    # free drafts, flat passes: speedup = E[tokens]; 2× needs (1 − α^9)/(1 − α) = 2 at gamma 8
    alpha, gamma = theory.alpha_needed(FLAT, 0.0, 0.0, 2.0)
    assert gamma == 8 and theory.expected_tokens(alpha, 8) == pytest.approx(2.0, abs=1e-6)
    assert theory.alpha_needed(FLAT, 0.0, 0.0, 1.0)[0] == pytest.approx(0.0, abs=1e-6)  # any draft breaks even


def test_costs_raise_the_needed_alpha():
    cheap = theory.alpha_needed(FLAT, 0.0, 0.0, 1.5)[0]
    assert theory.alpha_needed(FLAT, 10.0, 0.0, 1.5)[0] > cheap  # drafting costs
    assert theory.alpha_needed({1: 100.0, 9: 180.0}, 0.0, 0.0, 1.5)[0] > cheap  # wide passes cost more
    assert theory.alpha_needed(FLAT, 0.0, 20.0, 1.5)[0] > cheap  # so does the step's own bookkeeping
    assert theory.alpha_needed(FLAT, 0.0, 0.0, 1.5, overhead_ms_per_node=5.0)[0] > cheap


def test_a_goal_no_draft_reaches_is_none():
    linear = {1: 100.0, 2: 200.0, 16: 1600.0}  # a pass over k positions costs k passes: no gain at all
    assert theory.alpha_needed(linear, 0.0, 0.0, 1.5) is None
    assert theory.alpha_needed(FLAT, 0.0, 0.0, 10.0) is None  # more than gamma + 1 = 9 tokens a pass


def test_the_needed_alpha_in_words():
    text = theory.needed_text({"1": {"alpha": 0.7, "gamma": 6}, "1.5": {"alpha": 0.84, "gamma": 8}, "2": None})
    assert text == (
        "with these measured costs a chain needs α ≥ 0.70 (γ 6) to break even, α ≥ 0.84 (γ 8) for 1.5×, "
        "no α is enough for 2×"
    )


def test_interpolate_cost_edges_and_modest_goals():
    assert theory.interpolate_cost({4: 50.0}, 64) == 50.0  # one measured size: flat
    assert theory.interpolate_cost({1: 10.0, 3: 30.0}, 2) == 20.0
    assert theory.interpolate_cost({1: 10.0, 3: 30.0}, 5) == 50.0  # extrapolated along the last segment
    with pytest.raises(ValueError):
        theory.interpolate_cost({}, 1)
    assert theory.alpha_needed(FLAT, 0.0, 0.0, 0.5)[0] == pytest.approx(0.0, abs=1e-6)


# the one home of the diagnosis


def test_findings_lists_every_limit_in_order_and_diagnose_is_the_first():
    found = theory.findings(0.27, 4, 0.039)  # the sampling sample: low acceptance, and γ 2 gains > 5%
    assert [f.kind for f in found] == ["low_acceptance", "gamma_too_long"]
    assert found[0].best_gamma == 2 and found[0].best_speedup > 1.05 * found[0].speedup
    assert theory.diagnose(0.27, 4, 0.039) == "low_acceptance"
    assert [f.kind for f in theory.findings(0.3, 4, 0.5)][:2] == ["low_acceptance", "slow_draft"]
    assert [f.kind for f in theory.findings(0.8, 4, None)] == ["healthy"]
    g, _ = theory.best_gamma(0.8, 0.05)
    assert [f.kind for f in theory.findings(0.8, g, 0.05)] == ["healthy"]


@pytest.mark.parametrize("c", [0.0, 0.01, 0.04, 0.2, 0.6])
def test_break_even_alpha_is_where_gamma_one_breaks_even_and_no_gamma_pays_below(c):
    a = theory.break_even_alpha(c)
    assert theory.speedup(a, 1, c) == pytest.approx(1.0)
    below = max(a - 0.01, 0.0)
    if a > 0.01:
        assert all(theory.speedup(below, g, c) < 1.0 for g in range(1, 17))
    assert all(theory.speedup(min(a + 0.01, 1.0), 1, c) >= 1.0 for _ in [0])


def test_ideal_words_say_the_assumption():
    assert "γ+1 positions" in theory.IDEAL_WORDS and "one token's pass" in theory.IDEAL_WORDS
