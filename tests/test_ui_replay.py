"""Step through (specviz/ui/replay.py) with AppTest: every sample steps and keeps the URL, play and
pause, a click on the timeline, hostile token text."""

from __future__ import annotations

import copy

import pytest

from specviz.trace import dumps
from specviz.ui import replay, traces
from tests.apptestkit import button, ok, open_page, plain, step_title

SAMPLES = list(traces.list_samples())
HOSTILE = "<script>alert(1)</script>"


@pytest.mark.parametrize("name", SAMPLES)
def test_replay_each_sample_steps_and_keeps_the_url(name):
    at = open_page("pages/replay.py", trace=name, step="3")
    n = len(traces.load_sample(name)["steps"])
    first = min(3, n - 1)
    assert step_title(at) == replay.step_heading(first, n)
    assert at.selectbox(key="replay_trace").value == f"sample:{name}"
    # acceptance, distributions, timeline; a tree step adds its tree and its attention mask
    assert len(at.get("plotly_chart")) == (5 if name.startswith("tree") else 3)
    if n > first + 1:
        ok(button(at, "Next").click().run())
        assert step_title(at) == replay.step_heading(first + 1, n)
        assert at.query_params["step"] == [str(first + 1)] or at.query_params["step"] == str(first + 1)
    ok(button(at, "Last").click().run())
    assert step_title(at) == replay.step_heading(n - 1, n)
    ok(button(at, "Prev").click().run())
    assert step_title(at) == replay.step_heading(max(0, n - 2), n)
    ok(button(at, "First").click().run())
    assert step_title(at) == replay.step_heading(0, n)
    if n > 2:
        ok(at.slider(key="replay_slider").set_value(n // 2).run())
        assert step_title(at) == replay.step_heading(n // 2, n)
    assert any(plain(i.value).startswith("n_accepted = ") for i in at.info)


def test_replay_play_toggles_and_distribution_position():
    at = open_page("pages/replay.py", trace=SAMPLES[0])
    ok(button(at, "Play").click().run())
    assert at.session_state["replay_playing"] is True
    ok(button(at, "Pause").click().run())
    assert at.session_state["replay_playing"] is False
    radio = at.radio(key="replay_dist_pos")
    if len(radio.options) > 1:
        before = radio.value
        want = 1 if before == 0 else 0  # decided before set_value, which changes radio.value in place
        ok(radio.set_value(want).run())
        assert at.radio(key="replay_dist_pos").value == want


def test_timeline_click_maps_to_a_step():
    assert replay.step_from_selection([{"x": 2, "y": 17, "curve_number": 0}]) == 17
    assert replay.step_from_selection([{"customdata": [4]}]) == 4
    assert replay.step_from_selection([{"x": 1}]) is None
    assert replay.step_from_selection([]) is None


def test_hostile_token_text_is_never_interpreted(tiny_trace):
    evil = copy.deepcopy(tiny_trace)
    for step in evil["steps"]:
        for d in step["draft"]:
            d["token"] = HOSTILE
        if step["next"]:
            step["next"]["token"] = "**bold** [link](javascript:alert(1)) :red[x] $x$"
    evil["prompt"]["text"] = HOSTILE
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("evil.json", dumps(evil).encode(), "application/json").run())
    assert not at.error and not at.get("html")
    for md in [*at.markdown, *at.info]:
        assert "<script>" not in md.value
        assert "](javascript" not in md.value and "**bold**" not in md.value
    assert any("\\<script\\>" in md.value for md in at.markdown)
