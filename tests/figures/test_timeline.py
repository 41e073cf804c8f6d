"""specviz.figures.timeline: colours and shapes per kind, counts, the window, escaped labels."""

from __future__ import annotations

import pytest

from specviz import figures as fg
from tests.figkit import figure_strings, hostile_toy, points


def test_timeline_colours_shapes_and_counts_per_kind():
    trace = fg.toy_trace()  # accepted, accepted, rejected, then a correction
    fig = fg.timeline_figure(trace, 0, 1, selected=0)
    for kind in fg.KINDS:
        tr = next(t for t in fig.data if t.name == fg.LABELS[kind])
        assert tr.marker.color == fg.COLORS[kind]
        assert tr.marker.symbol == fg.SYMBOLS[kind]
    counts = {k: len(points(fig, fg.LABELS[k])) for k in fg.KINDS}
    assert counts == {"accepted": 2, "rejected": 1, "unevaluated": 0, "correction": 1, "bonus": 0}
    # the model's token sits in its own column after the gamma draft columns
    assert points(fig, fg.LABELS["correction"]) == [4]
    assert len(fig.layout.shapes) == 1  # the selected step's band


def test_timeline_counts_match_a_recorded_trace(recorded):
    for trace in recorded.values():
        steps = trace["steps"]
        fig = fg.timeline_figure(trace, 0, len(steps))
        total = sum(len(points(fig, fg.LABELS[k])) for k in fg.KINDS)
        assert total == sum(len(s["draft"]) + (s["next"] is not None) for s in steps)
        want_acc = sum(s["n_accepted"] for s in steps)
        assert len(points(fig, fg.LABELS["accepted"])) == want_acc
        rows = {y for t in fig.data for y in (t.y or []) if y is not None}
        assert rows <= set(range(len(steps)))


def test_timeline_window_draws_only_its_rows(recorded):
    trace = recorded["sampling"]
    n = len(trace["steps"])
    start, stop = fg.window(n, n // 2, 5)
    fig = fg.timeline_figure(trace, start, stop, selected=n // 2)
    rows = {y for t in fig.data for y in (t.y or []) if y is not None}
    assert rows <= set(range(start, stop)) and len(rows) >= 1
    assert list(fig.layout.yaxis.tickvals) == list(range(start, stop))


@pytest.mark.parametrize(
    ("n", "cur", "size", "want"),
    [(500, 0, 24, (0, 24)), (500, 250, 24, (242, 266)), (500, 499, 24, (476, 500)), (3, 1, 24, (0, 3))],
)
def test_window(n, cur, size, want):
    assert fg.window(n, cur, size) == want


def test_timeline_hover_and_labels_are_escaped():
    fig = fg.timeline_figure(hostile_toy(), 0, 1)
    texts = figure_strings(fig)
    assert not any("<script" in s or "<img" in s or "<b>bold" in s for s in texts)
    joined = "\n".join(texts)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in joined
    assert "&lt;b&gt;bold&lt;/b&gt;&amp;amp;" in joined  # a literal "&amp;" token stays literal
    assert "␣⏎" in joined  # whitespace made visible
    hover = next(t for t in fig.data if t.name == fg.LABELS["accepted"]).hovertext[0]
    assert "q = 0.600" in hover and "p = 0.700" in hover and "r = 0.410 &lt; min(1, p/q) = 1.000" in hover


def test_timeline_labels_shrink_with_gamma_so_they_do_not_overlap():
    """Public report: at gamma 16 the timeline's tokens overlapped and the model-token column was clipped."""
    wide = fg.toy_trace()
    wide["meta"]["gamma"] = 16
    for d in wide["steps"][0]["draft"]:
        d["token"] = "abcdefghijklmnop"
    fig = fg.timeline_figure(wide, 0, 1)
    longest = max(len(t) for tr in fig.data if tr.text for t in tr.text)
    assert longest == 90 // 18  # one column's room, the cut marked by "…"
    assert fig.layout.xaxis.range[1] > 17.4 and fig.layout.xaxis.title.text == "draft position"
    assert max(len(t) for tr in fg.timeline_figure(fg.toy_trace(), 0, 1).data if tr.text for t in tr.text) <= 12


def test_a_copied_draft_says_so_in_its_hover_and_words():
    trace = fg.toy_trace()
    trace["steps"][0]["draft"][1]["copied"] = 3  # the prompt-lookup fallback copied the second draft
    fig = fg.timeline_figure(trace, 0, 1)
    hovers = next(t for t in fig.data if t.name == fg.LABELS["accepted"]).hovertext
    assert "copied: the last 3 tokens occurred earlier, and this followed them" in hovers[1]
    assert "copied" not in hovers[0]
    assert "(copied: the last 3 tokens occurred earlier, and this followed them)" in " ".join(
        fg.describe_step(trace, 0)
    )
