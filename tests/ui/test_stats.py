"""Statistics (specviz/ui/stats.py) with AppTest: every sample, the trace chosen on Step through,
steps that drafted nothing."""

from __future__ import annotations

import copy

import pytest

from specviz import figures as fg
from specviz.core import theory
from specviz.core.decoder import DecodeConfig
from specviz.core.rules import make_rule
from specviz.core.warp import Sampling
from specviz.drafters.ngram import NgramDrafter
from specviz.figures import stats as fstats
from specviz.run.record import Recording
from specviz.teach import exercises as ex
from specviz.trace import Trace, dumps, load, rate, summarize, validate
from specviz.ui import speedup, traces
from specviz.ui.common import md_escape
from tests.apptestkit import metric, ok, open_page, plain

SAMPLES = list(traces.list_samples())


@pytest.mark.parametrize("name", SAMPLES)
def test_stats_each_sample(name):
    at = open_page("pages/stats.py", trace=name)
    labels = [m.label for m in at.metric]
    assert {"steps", "α", "tokens / step", "cost ratio c", "ideal speedup", "measured speedup"} <= set(labels)
    assert len(at.get("plotly_chart")) == 4
    assert at.info  # the verdict in words
    assert at.query_params["trace"] in (name, [name])
    # the ideal speedup never stands alone: its assumption in the caption, the measured figure beside it
    ideal = next(m for m in at.metric if m.label == "ideal speedup")
    if ideal.value != "—":
        assert any("assumes a pass over γ+1 positions costs one token's pass" in plain(c.value) for c in at.caption)
        assert "measured" in (ideal.proto.delta or "")
    assert any("Wilson" in c.value for c in at.caption)  # the per-position bars say what their whiskers are
    # the page shows theory.measure's numbers and leads its verdict with theory.findings' first
    trace = traces.load_sample(name)
    assert not isinstance(trace, str)
    m = theory.measure(trace)
    assert metric(at, "α") == rate(m.alpha) and metric(at, "cost ratio c") == ("—" if m.c is None else f"{m.c:.3f}")
    assert at.info[0].value == md_escape(fg.verdict(m)[0])


def test_stats_follows_the_replay_choice(tiny_trace):
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("mine.json", dumps(tiny_trace).encode(), "application/json").run())
    ok(at.switch_page("pages/stats.py").run())
    assert at.selectbox(key="stats_trace").value.startswith("upload:")
    assert next(m for m in at.metric if m.label == "steps").value == str(len(tiny_trace["steps"]))


def test_stats_sets_apart_steps_that_drafted_nothing(target):
    # prompt lookup on a prompt with no repeated n-gram: the first steps propose nothing
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0.0), max_new_tokens=8)
    trace = Recording(target, NgramDrafter(target.vocab_size), "x", cfg, prompt_ids=[1, 2, 3, 4, 5, 6]).run()
    empty = sum(1 for st in trace["steps"] if not st["draft"])
    assert empty and validate(trace) == []
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("lookup.json", dumps(trace).encode(), "application/json").run())
    ok(at.switch_page("pages/stats.py").run())
    assert any(f"{empty} of {len(trace['steps'])} steps drafted nothing" in c.value for c in at.caption)


def test_stats_shows_a_measured_speedup_beside_the_ideal(tiny_trace):
    import copy

    trace = copy.deepcopy(tiny_trace)
    for st in trace["steps"]:
        st["timing_ms"] = {"draft": 1.0 * len(st["draft"]), "verify": 10.0}
    trace["meta"]["timing"] = {
        "wall_ms": 10.0 * len(trace["steps"]) * 1.2,
        "baseline": {"tokens": 50, "wall_ms": 400.0},
    }
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("timed.json", dumps(trace).encode(), "application/json").run())
    ok(at.switch_page("pages/stats.py").run())
    ideal = next(m for m in at.metric if m.label == "ideal speedup")
    measured = next(m for m in at.metric if m.label == "measured speedup")
    assert measured.value != "—" and ideal.proto.delta == f"measured {measured.value}"
    assert any("Measured beside it" in plain(c.value) for c in at.caption)


def _variant(trace: Trace, how: str) -> Trace:
    """A sample as recorded, with every third step's timing lost (c over timed steps or all steps used to
    differ), or without meta.gamma (three γ fallbacks used to differ: the per-position rates, the longest
    draft, and 4)."""
    trace = copy.deepcopy(trace)
    if how == "partly timed":
        for st in trace["steps"][2::3]:
            st.pop("timing_ms", None)
    elif how == "no meta.gamma":
        trace["meta"].pop("gamma", None)
    return trace


@pytest.mark.parametrize("how", ["as recorded", "partly timed", "no meta.gamma"])
@pytest.mark.parametrize("name", SAMPLES)
def test_statistics_exercises_and_the_lab_read_the_same_numbers(name, how, monkeypatch):
    """Issue 24, item 3: Statistics measured c over the timed steps and γ from the per-position rates, the
    exercises and the lab over all steps and with other γ fallbacks, so the Statistics verdict could disagree
    with the bottleneck exercise about the same trace. One model now (theory.measure, theory.findings):
    for every sample trace, the verdict's numbers, exercise 8's key (the bottleneck) and the lab's α, γ, c
    are the same."""
    trace = _variant(load(traces.SAMPLES_DIR / f"{name}.json.gz"), how)
    monkeypatch.setattr(speedup, "sample_traces", lambda: {name: trace})  # the lab reads this variant
    m = theory.measure(trace, name, summarize(trace))  # what the Statistics page reads
    assert m.alpha is not None and m.c is not None  # every sample drafted and was timed
    alpha, gamma, c = rate(m.alpha), m.gamma, f"{m.c:.3f}"  # as the Statistics page shows them
    found = theory.findings(m.alpha, m.gamma, m.c)
    verdict = fg.verdict(m)
    assert verdict[0] == fstats.finding_words(found[0], m) and f"α = {alpha}" in verdict[0]
    # the Speedup lab: "take them from" a sample, and the sample it opens on
    point = {p.name: p for p in speedup._measured_points()}[name]
    lab_alpha, lab_gamma, lab_c = speedup.lab_values(point)
    assert (f"{lab_alpha:.2f}", lab_gamma, f"{lab_c:.3f}") == (alpha, gamma, c)
    if (default := speedup.lab_defaults()) is not None and default[0] == name:
        assert speedup.lab_values(default[1]) == (lab_alpha, lab_gamma, lab_c)
    # the exercises: the bottleneck question's totals and key, the expected-tokens question's α and γ
    asked = set()
    for seed in range(6):
        for q in ex.make_quiz(trace, seed, name):
            if q.kind == "bottleneck":
                whole = next(line for line in q.details if line.startswith("whole trace"))
                assert f"α = {alpha}, γ = {gamma}," in whole and whole.endswith(f"cost ratio c = {c}")
                assert q.options[q.answer] == ex.DIAGNOSIS_WORDS[found[0].kind]
                asked.add(q.kind)
            elif q.kind == "expected_tokens":
                assert f"α = {alpha} " in q.text and f"γ = {gamma} drafts" in q.text
                asked.add(q.kind)
    assert asked == {"bottleneck", "expected_tokens"}
