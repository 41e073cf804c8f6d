"""specviz.teach.scenarios: the course's scenarios from real data, each with its figure and one right answer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from specviz.core import theory
from specviz.formats import runsummary
from specviz.teach import scenarios
from specviz.trace import Trace, summarize
from specviz.ui import traces

SAMPLES = list(traces.list_samples())
ENGINES = sorted(Path("tests/data/engines").iterdir())


def sample(name: str) -> Trace:
    trace = traces.load_sample(name)
    assert not isinstance(trace, str)
    return trace


def well_formed(q: scenarios.Question) -> None:
    assert q.kind in scenarios.SCENARIO_KINDS and q.title.startswith("Scenario")
    assert 2 <= len(q.options) <= 4 and len(set(q.options)) == len(q.options) and 0 <= q.answer < len(q.options)
    assert q.figure is not None and q.figure["data"]  # every scenario comes with its chart


@pytest.mark.parametrize("name", SAMPLES)
def test_every_scenario_over_many_seeds_has_one_right_answer(name):
    trace = sample(name)
    m = theory.measure(trace)
    for seed in range(25):
        rng = random.Random(seed)
        for q in scenarios.scenario_questions(trace, rng):
            well_formed(q)
            right = q.options[q.answer]
            if q.kind == "choose_tau":
                tau = float(right.rsplit("τ = ", 1)[1])
                goal = float(q.text.split("at least ")[1].split("×")[0])
                speeds = dict(zip(scenarios.TAUS, q.figure["data"][0]["y"], strict=True))
                assert right.startswith("the small draft model drafts")  # the roles never swap
                assert speeds[tau] >= goal and all(speeds[t] < goal for t in scenarios.TAUS if t > tau)
                for o in q.options:  # every other option misses the goal, is lossier than needed, or swaps roles
                    t = float(o.rsplit("τ = ", 1)[1])
                    assert o == right or t != tau or o.startswith("the evaluation model drafts")
            elif q.kind == "budget_gamma":
                g = int(right.removeprefix("γ = "))
                unit = "positions" if "positions per second" in q.text else "compute"
                alpha = round(min(max(m.alpha, 0.01), 0.99), 2)
                c = m.c if unit == "compute" else 0.0
                budget = (
                    int(q.text.split(" positions per second")[0].split()[-1])
                    if unit == "positions"
                    else int(q.text.split("gives this service ")[1].split()[0])
                )
                ys = {h: theory.budget_yield(alpha, h, budget, unit, c) for h in range(1, 13)}
                assert ys[g] == max(ys.values())
                assert all(ys[int(o.removeprefix("γ = "))] < 0.98 * ys[g] for o in q.options if o != right)
            elif q.kind == "control_policy":
                off = float(right.split("α = ")[1].split(";")[0])
                assert off == pytest.approx(m.c, abs=5e-4)
                assert theory.speedup(off, 1, m.c) == pytest.approx(1.0, abs=1e-3)
            elif q.kind == "production_metrics":
                found = scenarios.readings(summarize(trace)["per_position_acceptance"], survival=False)
                assert right.startswith(
                    {"first": "The first draft", "late": "Acceptance decays", "fine": "Acceptance holds"}[found[0]]
                )
            elif q.kind == "verify_cost":
                assert right.startswith("A pass over γ + 1") and theory.IDEAL_ASSUMPTION in q.text
                passes = float(right.split("costs ")[1].split()[0])
                assert passes > 1.1


def test_the_samples_give_every_scenario():
    kinds = {q.kind for name in SAMPLES for q in scenarios.scenario_questions(sample(name), random.Random(1))}
    assert kinds == set(scenarios.SCENARIO_KINDS)


@pytest.mark.parametrize("path", ENGINES, ids=[p.name for p in ENGINES])
def test_production_metrics_from_every_engines_run_summary(path):
    rs = runsummary.load_summary(path)
    stats = runsummary.summary_stats(rs)
    for seed in range(10):
        q = scenarios.production_metrics(stats, random.Random(seed), rs["engine"], survival=True)
        if stats["per_position_acceptance"] is None:
            assert q is None
            continue
        assert q is not None
        well_formed(q)
        found = scenarios.readings(stats["per_position_acceptance"], survival=True)
        holds = {"first": "The first draft", "late": "Acceptance decays", "fine": "Acceptance holds"}
        # the key is the first reading; no other reading that holds is offered
        assert q.options[q.answer].startswith(holds[found[0]])
        assert not [o for o in q.options if o != q.options[q.answer] and o.startswith(tuple(holds[r] for r in found))]


def test_readings_cover_each_case():
    assert scenarios.readings([0.3, 0.1, 0.05], survival=True) == ("first", "late")
    assert scenarios.readings([0.8, 0.4, 0.1], survival=True) == ("late",)
    assert scenarios.readings([0.82, 0.62, 0.42], survival=True) == ("fine",)
    assert scenarios.readings([0.9, 0.5, 0.5], survival=False) == ("late",)  # 0.9 · 0.5 · 0.5 = 0.225 of steps


def test_pass_costs_are_the_measured_ones():
    measured = json.loads(Path("docs/results/pass-cost.json").read_text())["ms"]["float32"]
    assert {int(k): v for k, v in measured.items()} == pytest.approx(scenarios.PASS_COST_MS)


def test_a_trace_that_measured_its_own_pass_cost_is_quoted_with_it():
    import copy

    trace = copy.deepcopy(sample("greedy"))
    tokens = len(trace["output"]["token_ids"])
    wall = sum(s["timing_ms"]["draft"] + s["timing_ms"]["verify"] for s in trace["steps"])
    later = trace["steps"][1:]  # theory.timed_steps: step 0 (whose draft also reads the prompt) is left out
    per_pass = sum(s["timing_ms"]["verify"] for s in later) / len(later)
    # the evaluation model alone at 0.5 of a verification pass per token: one pass costs 2 of its tokens
    trace["meta"]["timing"] = {"wall_ms": wall, "baseline": {"tokens": 100, "wall_ms": 100 * per_pass / 2}}
    assert tokens and theory.measure(trace).verify_passes == pytest.approx(2.0)
    q = scenarios.verify_cost(trace, random.Random(0))
    assert q is not None and "This run measured" in q.text and "2.00 one-token passes" in q.options[q.answer]


def test_verify_cost_never_offers_a_finding_that_holds_as_a_wrong_answer():
    """Review: with low acceptance the bottleneck question's key, 'Acceptance is too low' was a wrong option
    here; and the fallback's c (a draft token over a (γ+1)-position pass) is converted to one-token passes."""
    import random

    from specviz.teach.scenarios import verify_cost
    from specviz.trace import load
    from specviz.ui import traces

    for name in ("long", "greedy", "sampling-t0.7"):
        trace = load(traces.SAMPLES_DIR / f"{name}.json.gz")
        for seed in range(5):
            q = verify_cost(trace, random.Random(seed))
            if q is None:
                continue
            m = theory.measure(trace)
            holds = {f.kind for f in theory.findings(m.alpha, m.gamma, m.c)}
            wrong = [o for i, o in enumerate(q.options) if i != q.answer]
            assert not ("low_acceptance" in holds and any(o.startswith("Acceptance is too low") for o in wrong))
            assert not ("slow_draft" in holds and any(o.startswith("The draft is too slow") for o in wrong))
            assert "On the machine of measured" not in q.text and "(ideal (" not in q.text


def test_production_metrics_chart_draws_the_shares_its_lines_quote():
    """Review: the lines quoted cumulative shares (position 4: 1%) while the chart drew per-test rates (29%)."""
    import random

    from specviz.trace import load, summarize
    from specviz.ui import traces

    trace = load(traces.SAMPLES_DIR / "long.json.gz")
    q = scenarios.production_metrics(summarize(trace), random.Random(0), "this trace", False)
    assert q is not None and q.figure is not None
    bars = next(t for t in q.figure["data"] if t.get("type") == "bar")
    quoted = q.details[-1].split(": ", 1)[1]
    assert [f"{y:.0%}" for y in bars["y"]] == [part.split(": ")[1] for part in quoted.split(", ")]
