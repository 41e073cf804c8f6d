"""specviz.scenarios: the course's scenarios from real data, each with its figure and one right answer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from specviz import runsummary, scenarios, theory
from specviz.figures import stats as fstats
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
                assert right.startswith("A pass over γ + 1") and theory.IDEAL_WORDS in q.text
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
    measured = json.loads(Path("docs/pass-cost.json").read_text())["ms"]["float32"]
    assert {int(k): v for k, v in measured.items()} == pytest.approx(scenarios.PASS_COST_MS)


def test_a_trace_that_measured_its_own_pass_cost_is_quoted_with_it():
    import copy

    trace = copy.deepcopy(sample("greedy"))
    tokens = len(trace["output"]["token_ids"])
    wall = sum(s["timing_ms"]["draft"] + s["timing_ms"]["verify"] for s in trace["steps"])
    per_pass = sum(s["timing_ms"]["verify"] for s in trace["steps"]) / len(trace["steps"])
    # the evaluation model alone at 0.5 of a verification pass per token: one pass costs 2 of its tokens
    trace["meta"]["timing"] = {"wall_ms": wall, "baseline": {"tokens": 100, "wall_ms": 100 * per_pass / 2}}
    assert tokens and fstats.costs(trace).verify_passes == pytest.approx(2.0)
    q = scenarios.verify_cost(trace, random.Random(0))
    assert q is not None and "measured on this run" in q.text and "2.00 one-token passes" in q.options[q.answer]
