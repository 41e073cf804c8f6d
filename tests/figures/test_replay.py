"""specviz.figures.replay: Step through's acceptance diagram and distributions, for every rule, escaped."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest

from specviz import figures as fg
from tests.figkit import figure_strings, hostile_toy

# ---------------------------------------------------------------- the acceptance diagram


def test_acceptance_marks_first_rejection_and_colours_r():
    fig = fg.acceptance_figure(fg.toy_trace(), 0)
    names = [t.name for t in fig.data]
    assert "q(x) draft" in names and "p(x) evaluation model" in names and "min(1, p/q)" in names
    acc = next(t for t in fig.data if t.name == "r: " + fg.LABELS["accepted"])
    rej = next(t for t in fig.data if t.name == "r: " + fg.LABELS["rejected"])
    assert acc.marker.color == fg.COLORS["accepted"] and list(acc.y) == [0.41, 0.3]
    assert rej.marker.color == fg.COLORS["rejected"] and list(rej.x) == [3]
    assert any(a.text == "first rejection" and a.x == 3 for a in fig.layout.annotations)
    bars = {t.name: list(t.y) for t in fig.data if isinstance(t, go.Bar)}
    assert bars["q(x) draft"] == [0.6, 0.5, 0.4] and bars["p(x) evaluation model"] == [0.7, 0.45, 0.1]


@pytest.mark.parametrize("rule", ["sampling", "greedy", "threshold", "typical", "ngram"])
def test_acceptance_every_rule(recorded, rule):
    trace = recorded[rule]
    for k in range(len(trace["steps"])):
        assert isinstance(fg.acceptance_figure(trace, k), go.Figure)
    if rule == "threshold":
        fig = fg.acceptance_figure(trace, 0)
        assert any("τ = 0.3" in (a.text or "") for a in fig.layout.annotations)


def test_acceptance_escapes_tick_labels():
    texts = figure_strings(fg.acceptance_figure(hostile_toy(), 0))
    assert not any("<script" in s for s in texts)
    assert any("&lt;script&gt;" in s for s in texts)


# ---------------------------------------------------------------- distributions


def test_residual_top():
    p = [{"token_id": 1, "token": "a", "prob": 0.5}, {"token_id": 2, "token": "b", "prob": 0.3}]
    p.append({"token_id": 3, "token": "c", "prob": 0.2})
    q = [{"token_id": 1, "token": "a", "prob": 0.6}, {"token_id": 2, "token": "b", "prob": 0.1}]
    res = fg.residual_top(p, q)
    assert {e["token_id"]: round(e["prob"], 6) for e in res} == {2: 0.5, 3: 0.5}
    assert fg.residual_top(q[:1], q[:1]) == []


def test_distribution_marks_drafted_and_chosen_tokens():
    fig = fg.distribution_figure(fg.toy_trace(), 0)  # position n_accepted = 2: ' mat' rejected, ' rug' chosen
    p_bars, _, res_bars = fig.data
    labels = list(p_bars.y)
    mat, rug = labels.index("␣mat"), labels.index("␣rug")
    assert p_bars.marker.color[mat] == fg.COLORS["rejected"]
    assert res_bars.marker.color[rug] == fg.COLORS["correction"]
    assert p_bars.marker.color[rug] == fg.NEUTRAL  # drawn from the residual, not from p
    assert math.isclose(res_bars.x[rug], 0.6) and math.isclose(res_bars.x[mat], 0.0)
    assert any("chosen" in (a.text or "") for a in fig.layout.annotations)


def test_distribution_bonus_and_other_positions(recorded):
    trace = recorded["sampling"]
    bonus = next(k for k, s in enumerate(trace["steps"]) if s["next"] and s["next"]["kind"] == "bonus")
    fig = fg.distribution_figure(trace, bonus)
    p_bars = fig.data[0]
    chosen = fg.esc(trace["steps"][bonus]["next"]["token"], 16)
    assert fg.COLORS["bonus"] in list(p_bars.marker.color)
    assert any(chosen in lab for lab in p_bars.y)
    assert not fig.data[1].x or not any(fig.data[1].x)  # no q at the bonus position
    for j in range(len(trace["steps"][0]["draft"])):
        assert isinstance(fg.distribution_figure(trace, 0, j), go.Figure)


def test_distribution_escapes_labels():
    texts = figure_strings(fg.distribution_figure(hostile_toy(), 0))
    assert not any("<script" in s or "<img" in s for s in texts)
    assert any(s.startswith("&lt;script&gt;") for s in texts)


def test_a_greedy_trace_claiming_a_residual_draw_still_draws():
    """Review: greedy draws two panels; a (foreign) greedy trace whose token says source "residual" crashed."""
    import copy

    from specviz.figures.replay import distribution_spec
    from specviz.trace import load
    from specviz.ui import traces

    t = copy.deepcopy(load(traces.SAMPLES_DIR / "greedy.json.gz"))
    k = next(i for i, s in enumerate(t["steps"]) if s.get("next") and s["n_accepted"] < len(s["draft"]))
    t["steps"][k]["next"]["source"] = "residual"
    spec = distribution_spec(t, k)
    assert spec["data"]


def test_the_chosen_note_never_covers_a_long_bar():
    """Newcomer review: on a long chosen bar (a panel is a third of a half page) the note hid the bar it named;
    it now sits under that panel, naming the token; a short bar keeps its arrow."""
    from specviz.figures.replay import distribution_spec
    from specviz.trace import load
    from specviz.ui import traces

    t = load(traces.SAMPLES_DIR / "sampling-t0.7.json.gz")
    long_bar = short_bar = None
    for k in range(len(t["steps"])):
        notes = [a for a in distribution_spec(t, k)["layout"].get("annotations", []) if "chosen" in a["text"]]
        for a in notes:
            if a.get("yref") == "paper":
                long_bar = long_bar or a
            else:
                short_bar = short_bar or a
    assert long_bar and short_bar
    assert long_bar["text"].startswith("▲ chosen: ") and long_bar["yanchor"] == "top" and not long_bar["showarrow"]
    assert short_bar["showarrow"] and short_bar["yref"] == "y"


def test_a_step_that_drafted_nothing_says_so_in_every_panel():
    """Newcomer review: the last step of sampling-t0.7 drafted nothing, yet its residual panel said "not used:
    every draft was accepted"."""
    from specviz.figures.replay import distribution_spec
    from specviz.trace import load
    from specviz.ui import traces

    t = load(traces.SAMPLES_DIR / "sampling-t0.7.json.gz")
    k = next(k for k, s in enumerate(t["steps"]) if not s["draft"])
    texts = " ".join(a["text"] for a in distribution_spec(t, k)["layout"]["annotations"]).replace("<br>", " ")
    assert "every draft was accepted" not in texts
    assert "nothing drafted this step" in texts and "not used: nothing was drafted" in texts
