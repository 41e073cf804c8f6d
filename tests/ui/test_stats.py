"""Statistics (specviz/ui/stats.py) with AppTest: every sample, the trace chosen on Step through,
steps that drafted nothing."""

from __future__ import annotations

import pytest

from specviz.core.decoder import DecodeConfig
from specviz.core.rules import make_rule
from specviz.core.warp import Sampling
from specviz.drafters.ngram import NgramDrafter
from specviz.run.record import Recording
from specviz.trace import dumps, validate
from specviz.ui import traces
from tests.apptestkit import ok, open_page, plain

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
