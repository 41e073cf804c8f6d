"""specviz.figures.stats: the formulas, the cost model and its verdicts, the statistics charts."""

from __future__ import annotations

import copy
import math

from specviz import figures as fg
from specviz.trace import Trace, summarize


def test_theory_formulas():
    assert fg.expected_tokens(0.0, 4) == 1.0
    assert fg.expected_tokens(1.0, 4) == 5.0
    assert math.isclose(fg.expected_tokens(0.8, 4), (1 - 0.8**5) / 0.2)
    assert math.isclose(fg.implied_speedup(0.8, 4, 0.0), fg.expected_tokens(0.8, 4))
    assert math.isclose(fg.implied_speedup(0.8, 4, 0.25), (1 - 0.8**5) / (0.2 * 2.0))


def _with_timing(trace: Trace, draft_ms: float, verify_ms: float) -> Trace:
    trace = copy.deepcopy(trace)
    for s in trace["steps"]:
        s["timing_ms"] = {"draft": draft_ms * len(s["draft"]), "verify": verify_ms}
    return trace


def test_costs_and_verdicts(recorded):
    base = recorded["sampling"]
    s = summarize(base)
    k = fg.costs(_with_timing(base, 1.0, 10.0), s)
    assert math.isclose(k.c, 0.1) and k.alpha == s["alpha"]
    assert math.isclose(k.speedup, fg.implied_speedup(s["alpha"], 4, 0.1))
    slow = fg.costs(_with_timing(base, 8.0, 10.0), s)
    assert any("draft is slow" in line for line in fg.verdict(slow))
    low = fg.Costs(0.2, 8, 10, 1.2, fg.expected_tokens(0.2, 8), 0.1, 10.0, 0.01, 1.2, 1, 1.5, "model")
    lines = fg.verdict(low)
    assert lines[0].startswith("Low acceptance") and any("Gamma is too long" in line for line in lines)
    good = fg.costs(_with_timing(fg.toy_trace(), 0.1, 10.0))
    assert fg.verdict(good)[0].startswith(("Healthy", "Gamma could be longer"))


def test_stats_figures(recorded):
    trace = recorded["sampling"]
    s = summarize(trace)
    k = fg.costs(trace, s)
    per_pos = fg.per_position_figure(s)
    assert len(per_pos.data[0].x) == 4 and per_pos.data[0].marker.color == fg.COLORS["accepted"]
    lengths = fg.accepted_lengths_figure(s, 4)
    assert sum(lengths.data[0].y) == s["steps"]
    assert math.isclose(sum(lengths.data[1].y), s["steps"])  # the expected counts add up too
    theory = fg.tokens_per_step_figure(k)
    star = next(t for t in theory.data if t.name == "this trace (measured)")
    assert list(star.x) == [k.alpha] and list(star.y) == [k.tokens_per_step]
    timing = fg.timing_figure(trace)
    assert len(timing.data[0].x) == len(trace["steps"])
