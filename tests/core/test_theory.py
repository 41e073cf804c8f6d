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
    # the truncated geometric behind it: E = Σ (n + 1) P(n), and the P(n) sum to 1
    p = theory.accepted_length_probabilities(alpha, gamma)
    assert len(p) == gamma + 1 and sum(p) == pytest.approx(1.0)
    assert sum((n + 1) * pn for n, pn in enumerate(p)) == pytest.approx(e)


@given(alphas, gammas, costs, st.floats(0.5, 4.0))
def test_the_ideal_speedup_is_the_measured_cost_formula_at_one_pass(alpha, gamma, c, passes):
    assert theory.speedup(alpha, gamma, c) == pytest.approx(theory.speedup_at_costs(alpha, gamma, c, 1.0))
    if passes >= 1.0:  # a dearer verification pass only slows it down
        assert theory.speedup_at_costs(alpha, gamma, c, passes) <= theory.speedup(alpha, gamma, c) + 1e-12


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
    assert m.name == name and m.steps == len(trace["steps"])
    assert m.alpha == pytest.approx(s["alpha"]) and m.tokens_per_step == pytest.approx(s["tokens_per_step"])
    assert m.gamma == trace["meta"]["gamma"]
    assert m.expected_tokens_per_step == pytest.approx(theory.expected_tokens(m.alpha, m.gamma))
    # c by hand: a draft token's ms over a verification pass's, over the timed steps after step 0
    later = trace["steps"][1:]
    draft = sum(step["timing_ms"]["draft"] for step in later) / sum(len(step["draft"]) for step in later)
    verify = sum(step["timing_ms"]["verify"] for step in later) / len(later)
    assert m.c == pytest.approx(draft / verify)
    assert m.ideal_speedup == pytest.approx(theory.speedup(m.alpha, m.gamma, m.c))
    assert (m.best_gamma, m.best_speedup) == theory.best_gamma(m.alpha, m.c)
    assert m.tokens_per_second is not None and m.ms_per_token == pytest.approx(1e3 / m.tokens_per_second)
    assert 0 < m.mean_drafts <= m.gamma
    assert not math.isnan(m.tokens_per_step)


def _timed(draft_ms: list[float], verify_ms: list[float], drafts: int = 2, gamma: int | None = 4) -> dict:
    """A minimal trace: steps with `drafts` drafts (the first accepted) and the given timings."""
    steps = [
        {
            "index": i,
            "draft": [{"token_id": 1}] * drafts,
            "n_accepted": 1,
            "timing_ms": {"draft": d, "verify": v},
        }
        for i, (d, v) in enumerate(zip(draft_ms, verify_ms, strict=True))
    ]
    meta = {} if gamma is None else {"gamma": gamma}
    return {"meta": meta, "steps": steps}


def test_the_cost_ratio_is_measured_over_the_timed_steps_after_the_first():
    """Issue 24: Statistics measured c over the timed steps, the exercises and the lab over all steps;
    one definition now, and step 0 (whose draft also reads the prompt) is left out."""
    trace = _timed([50.0, 2.0, 2.0], [10.0, 10.0, 10.0])  # step 0 drafts slowly: the draft model's prefill
    assert theory.step_times(trace) == (1.0, 10.0) and theory.cost_ratio(trace) == pytest.approx(0.1)
    trace["steps"][2].pop("timing_ms")  # an untimed step counts neither its drafts nor a pass
    assert theory.timed_steps(trace) == [trace["steps"][1]] and theory.cost_ratio(trace) == pytest.approx(0.1)
    one = _timed([4.0], [10.0])  # a single timed step is all there is
    assert theory.cost_ratio(one) == pytest.approx(0.2)
    assert theory.cost_ratio(_timed([1.0, 1.0], [0.0, 0.0])) is None  # no verification time
    assert theory.cost_ratio(_timed([0.0, 0.0], [5.0, 5.0], drafts=0)) is None  # nothing drafted


def test_gamma_is_meta_gamma_with_one_fallback():
    assert theory.trace_gamma(_timed([1.0], [1.0], drafts=2, gamma=6)) == 6  # meta.gamma, not the drafts seen
    assert theory.trace_gamma(_timed([1.0], [1.0], drafts=3, gamma=None)) == 3  # the longest draft
    assert theory.trace_gamma(_timed([1.0], [1.0], drafts=0, gamma=None)) == 1


def test_the_measured_pass_costs_and_speedup_come_from_meta_timing():
    trace = _timed([2.0, 2.0], [10.0, 10.0])
    trace["output"] = {"token_ids": list(range(8))}
    assert theory.baseline(trace) == (None, None)
    trace["meta"]["timing"] = {"wall_ms": 40.0, "baseline": {"tokens": 10, "wall_ms": 50.0}}
    target_ms, measured = theory.baseline(trace)
    assert target_ms == 5.0 and measured == pytest.approx((8 / 40) / (10 / 50))
    s = {"alpha": 0.5, "tokens": 8, "tokens_per_step": 4.0}
    m = theory.measure(trace, summary=s)
    assert m.verify_passes == pytest.approx(2.0)  # a 10 ms pass is 2 of the 5 ms target-alone tokens
    # a draft token is 1 ms = 0.2 target-alone tokens, the pass 2 of them
    assert m.speedup_at_measured_costs == pytest.approx(theory.expected_tokens(0.5, 4) / (4 * 0.2 + 2.0))
    assert m.measured_speedup == pytest.approx(measured)


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


def test_the_model_alone_timed_with_its_own_overhead_lowers_the_needed_alpha():
    # a step's overhead counted, the model alone's not: biased against speculation
    bare = theory.alpha_needed(FLAT, 5.0, 20.0, 1.0)[0]
    fair = theory.alpha_needed(FLAT, 5.0, 20.0, 1.0, alone_ms=120.0)[0]
    assert fair < bare
    assert theory.alpha_needed(FLAT, 5.0, 20.0, 1.0, alone_ms=None)[0] == bare


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


@pytest.mark.parametrize("gamma", [1, 2, 4, 8])
@pytest.mark.parametrize("c", [0.0, 0.01, 0.04, 0.2, 0.6])
def test_break_even_alpha_at_a_gamma(gamma, c):
    a = theory.break_even_alpha_at(gamma, c)
    assert theory.speedup(a, gamma, c) == pytest.approx(1.0, abs=1e-6)
    assert a >= theory.break_even_alpha(c) - 1e-9  # a longer γ never breaks even earlier than γ = 1
    if gamma == 1:
        assert a == pytest.approx(theory.break_even_alpha(c), abs=1e-9)


def test_ideal_words_say_the_assumption():
    assert "γ+1 positions" in theory.IDEAL_WORDS and "one token's pass" in theory.IDEAL_WORDS
