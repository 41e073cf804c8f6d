"""specviz.figures.home: the step in one picture."""

from __future__ import annotations

from specviz import figures as fg
from tests.figkit import figure_strings, hostile_toy


def test_step_picture_boxes_and_escaping():
    fig = fg.step_picture(hostile_toy(), 0)
    # proposed: prefix + 3 drafts; kept: prefix + 2 accepted + the correction
    assert len(fig.layout.shapes) == 4 + 4
    edges = [s.line.color for s in fig.layout.shapes]
    assert edges.count(fg.COLORS["accepted"]) == 4 and edges.count(fg.COLORS["correction"]) == 1
    texts = figure_strings(fig)
    assert not any("<script" in s or "<img" in s for s in texts)
