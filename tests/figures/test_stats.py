"""specviz.figures.stats: the formulas, the cost model and its verdicts, the statistics charts."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest

from specviz import figures as fg
from specviz.core import theory
from specviz.core.theory import IDEAL_WORDS
from specviz.figures import stats as fstats
from specviz.trace import Trace, summarize
from specviz.ui import traces


def test_the_formulas_live_in_theory_not_here():
    """Issue 24: the cost model once had a second copy here (expected_tokens, implied_speedup, costs)."""
    for name in ("expected_tokens", "implied_speedup", "costs", "Costs", "measure"):
        assert not hasattr(fstats, name) and not hasattr(fg, name), name


def _with_timing(trace: Trace, draft_ms: float, verify_ms: float) -> Trace:
    trace = copy.deepcopy(trace)
    for s in trace["steps"]:
        s["timing_ms"] = {"draft": draft_ms * len(s["draft"]), "verify": verify_ms}
    return trace


def test_costs_and_verdicts(recorded):
    base = recorded["sampling"]
    s = summarize(base)
    k = theory.measure(_with_timing(base, 1.0, 10.0), summary=s)
    assert math.isclose(k.c, 0.1) and k.alpha == s["alpha"]
    assert math.isclose(k.ideal_speedup, theory.speedup(s["alpha"], 4, 0.1))
    slow = theory.measure(_with_timing(base, 8.0, 10.0), summary=s)
    assert any("draft is slow" in line for line in fg.verdict(slow))
    low = dataclasses.replace(
        k, alpha=0.2, gamma=8, tokens_per_step=1.2, c=0.01, ideal_speedup=1.2, measured_speedup=None
    )
    lines = fg.verdict(low)
    assert lines[0].startswith("Low acceptance") and any("Gamma is too long" in line for line in lines)
    assert [line.split(":")[0] for line in lines] == ["Low acceptance", "Gamma is too long"]  # theory.findings' order
    assert all(IDEAL_WORDS in line for line in lines if "×" in line)
    good = theory.measure(_with_timing(fg.toy_trace(), 0.1, 10.0))
    assert fg.verdict(good)[0].startswith(("Healthy", "Gamma is too short"))


def test_stats_figures(recorded):
    trace = recorded["sampling"]
    s = summarize(trace)
    k = theory.measure(trace, summary=s)
    per_pos = fg.per_position_figure(s)
    assert len(per_pos.data[0].x) == 4 and per_pos.data[0].marker.color == fg.COLORS["accepted"]
    lengths = fg.accepted_lengths_figure(s, 4)
    assert sum(lengths.data[0].y) == s["steps"]
    assert math.isclose(sum(lengths.data[1].y), s["steps"])  # the expected counts add up too
    curves = fg.tokens_per_step_figure(k)
    star = next(t for t in curves.data if t.name == "this trace (measured)")
    assert list(star.x) == [k.alpha] and list(star.y) == [k.tokens_per_step]
    assert star.marker.symbol != fg.SYMBOLS["bonus"]  # ★ means a bonus token everywhere
    timing = fg.timing_figure(trace)
    assert len(timing.data[0].x) == len(trace["steps"])


def test_position_counts_are_summarizes_rates_counted():
    for name in traces.list_samples():
        trace = traces.load_sample(name)
        rates = summarize(trace)["per_position_acceptance"]
        assert [a / n if n else None for a, n in fstats.position_counts(trace)] == rates, name


def test_wilson_interval():
    lo, hi = fstats.wilson(2, 3)
    assert lo == pytest.approx(0.2077, abs=1e-3) and hi == pytest.approx(0.9385, abs=1e-3)
    assert fstats.wilson(0, 0) == (0.0, 1.0)
    lo, hi = fstats.wilson(0, 5)
    assert lo == 0.0 and 0 < hi < 1
    assert fstats.wilson(500, 1000)[1] - fstats.wilson(500, 1000)[0] < 0.07


def test_per_position_bars_say_their_counts_interval_and_fade_when_few():
    """Issue 22: "67%" at position 3 came from 3 tests; the bar now says so."""
    trace = traces.load_sample("sampling-t0.7")
    s = summarize(trace)
    counts = fstats.position_counts(trace)
    fig = fg.per_position_figure(s, counts=counts)
    bar = fig.data[0]
    assert list(bar.text) == [f"{a / n:.0%} ({a}/{n})" for a, n in counts]
    assert "67% (2/3)" in bar.text
    # said under each bar with its position (newcomer review: over the bar the α line ran through them)
    assert bar.textposition == "none" and fig.layout.xaxis.ticktext[2] == "3<br>67% (2/3)"
    assert max(fig.layout.yaxis.tickvals) == 1 and fig.layout.yaxis.range[1] <= 1.1  # no tick past 100%
    assert len(bar.error_y.array) == len(counts) and bar.error_y.arrayminus[2] > 0.3  # 2 of 3 is uncertain
    assert list(bar.marker.opacity) == [1.0 if n >= fstats.FEW_TRIALS else 0.35 for _, n in counts]
    assert fg.per_position_figure(s).data[0].error_y.array is None  # an engine's counters: no counts, no bars


def test_the_scenario_figures():
    tau = fstats.tau_figure([0.1, 0.2], [0.5, 0.4], [1.6, 1.4], 1.5)
    assert list(tau.data[0].y) == [1.6, 1.4]
    be = fstats.break_even_figure(0.04, 4, [0.1, 0.5])
    assert [t.name for t in be.data][-1] == "measured windows of this trace"
    pc = fstats.pass_cost_figure({1: 40.0, 5: 60.0}, 5)
    assert list(pc.data[0].y) == [1.0, 1.5]
