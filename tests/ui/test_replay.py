"""Step through (specviz/ui/replay.py) with AppTest: every sample mounts the browser player at the
linked step with all its steps, the lesson file, hostile token text. Stepping itself happens in the
browser (tests/ui/test_browser.py, tests/teach/test_lesson.py)."""

from __future__ import annotations

import copy
import json

import pytest

from specviz import figures as fg
from specviz.trace import dumps
from specviz.ui import replay, traces
from tests.apptestkit import ok, open_page, player, step_title

SAMPLES = list(traces.list_samples())
HOSTILE = "<script>alert(1)</script>"


@pytest.mark.parametrize("name", SAMPLES)
def test_each_sample_mounts_the_player_at_the_linked_step(name):
    at = open_page("pages/replay.py", trace=name, step="3")
    trace = traces.load_sample(name)
    n = len(trace["steps"])
    mount, data = player(at)
    assert mount["step"] == min(3, n - 1) and mount["trace"] and mount["plotly"].startswith("app/static/plotly-")
    assert at.selectbox(key="replay_trace").value == f"sample:{name}"
    assert data["n"] == n == len(data["steps"])
    assert step_title(at) == f"Step {min(3, n - 1)} of {n} (numbered from 0)"
    # acceptance, distributions, timeline; a tree step adds its tree and its attention mask
    s = data["steps"][mount["step"]]
    assert s["acceptance"] and s["distributions"] and data["timeline"]["spec"]["data"]
    assert (s["tree"] is not None) == bool(trace["steps"][mount["step"]].get("tree"))
    assert s["next"].startswith("n_accepted = ")
    assert not at.get("plotly_chart")  # the server draws no step figure: the browser does


def test_a_step_past_the_end_or_not_a_number_is_clamped():
    n = len(traces.load_sample(SAMPLES[0])["steps"])
    assert player(open_page("pages/replay.py", trace=SAMPLES[0], step="99999"))[0]["step"] == n - 1
    assert player(open_page("pages/replay.py", trace=SAMPLES[0], step="-2"))[0]["step"] == 0
    assert player(open_page("pages/replay.py", trace=SAMPLES[0], step="²"))[0]["step"] == 0  # isdigit() says yes
    assert player(open_page("pages/replay.py", trace=SAMPLES[0], step="9" * 5000))[0]["step"] == 0


def test_presentation_mode_mounts_a_scaled_player():
    at = open_page("pages/replay.py", trace=SAMPLES[0], present="1")
    mount, data = player(at)
    assert data["presentation"] is True and mount["key"].endswith(":1")


def test_the_lesson_file_is_offered_with_a_safe_name():
    at = open_page("pages/replay.py", trace=SAMPLES[0])
    btn = next(b for b in at.get("download_button") if b.proto.label == "Download a lesson file")
    assert "no server and no network" in btn.proto.help
    choice = traces.TraceChoice("upload:x", "../../<evil>.json", {}, "k")
    assert replay.lesson_name(choice) == "specviz-evil-.json.html"


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
    _, data = player(at)
    # the player writes these with textContent: plain text, made visible, never markup
    assert data["prompt"] == HOSTILE and data["steps"][0]["table"]["rows"][0][1] == fg.visible(HOSTILE)
    figures = json.dumps([data["steps"][0]["acceptance"], data["timeline"]["spec"]])
    assert "<script>" not in figures and "&lt;script&gt;" in figures
