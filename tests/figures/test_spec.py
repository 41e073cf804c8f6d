"""specviz.figures.spec: the dict builder matches plotly's own figure methods, and `presented` scales a spec."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from specviz.figures.spec import Spec, merge, presented_spec, to_figure


def _layout(fig: go.Figure) -> dict[str, Any]:
    out = json.loads(json.dumps(fig.to_plotly_json()["layout"]))
    out.pop("template", None)
    return out


def test_merge_is_deep_and_copies() -> None:
    inner = {"b": [1, 2]}
    out = merge({"a": {"x": 1}, "k": 0}, {"a": {"y": 2}, "k": inner})
    assert out == {"a": {"x": 1, "y": 2}, "k": {"b": [1, 2]}}
    inner["b"].append(3)
    assert out["k"] == {"b": [1, 2]}  # a copy: later edits of the argument do not leak in


def test_vrect_and_hline_match_plotly() -> None:
    ours = Spec()
    ours.add_trace(dict(type="bar", x=[1, 2], y=[0.5, 0.2]))
    ours.add_vrect(x0=0.5, x1=1.5, fillcolor="red", opacity=0.1, line=dict(width=0), layer="below")
    ours.add_hline(y=0.3, line=dict(color="black", dash="dash"), annotation_text="τ = 0.3")
    theirs = go.Figure(go.Bar(x=[1, 2], y=[0.5, 0.2]))
    theirs.add_vrect(x0=0.5, x1=1.5, fillcolor="red", opacity=0.1, line_width=0, layer="below")
    theirs.add_hline(y=0.3, line=dict(color="black", dash="dash"))
    mine = _layout(to_figure(ours.to_dict()))
    assert mine["shapes"] == _layout(theirs)["shapes"]
    assert mine["annotations"][0]["text"] == "τ = 0.3" and mine["annotations"][0]["y"] == 0.3


def test_subplots_match_make_subplots() -> None:
    ours = Spec()
    ours.subplots(3, 0.07, ["a", "b", "c"])
    theirs = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.07, subplot_titles=["a", "b", "c"])
    for col in (1, 2, 3):
        ours.add_trace(dict(type="bar", x=[1], y=["t"], orientation="h"), col=col)
        theirs.add_trace(go.Bar(x=[1], y=["t"], orientation="h"), row=1, col=col)
    ours.update_yaxes(autorange="reversed")
    theirs.update_yaxes(autorange="reversed")
    mine, ref = to_figure(ours.to_dict()), theirs
    assert _layout(mine) == _layout(ref)
    assert [(t.xaxis, t.yaxis) for t in mine.data] == [(t.xaxis, t.yaxis) for t in ref.data]


def test_presented_scales_fonts_height_and_margins() -> None:
    spec = {
        "data": [{"type": "scatter", "x": [1], "y": [1], "textfont": {"size": 10}}],
        "layout": {
            "height": 200,
            "margin": {"l": 10, "t": 20},
            "annotations": [{"text": "a"}],
            "xaxis": {"title": "x"},
        },
    }
    out = presented_spec(spec, scale=2.0)
    assert out["layout"]["font"]["size"] == 24
    assert out["layout"]["xaxis"]["tickfont"]["size"] == 24 and out["layout"]["xaxis"]["title"]["font"]["size"] == 24
    assert out["layout"]["annotations"][0]["font"]["size"] == 24
    assert out["data"][0]["textfont"]["size"] == 20
    assert out["layout"]["height"] == 300 and out["layout"]["margin"] == {"l": 20, "t": 40}
    assert spec["layout"]["height"] == 200  # the original is left alone


def test_axis_titles_are_written_as_plotly_js_reads_them() -> None:
    spec = Spec()
    spec.update_yaxes(title="probability")
    spec.update_xaxes(title=None)
    assert spec.layout["yaxis"]["title"] == {"text": "probability"}  # Plotly.js 3 ignores a bare string
    assert spec.layout["xaxis"]["title"] is None


def test_presented_grows_a_font_that_traces_share_once() -> None:
    font = {"size": 10}
    spec = {"data": [{"type": "scatter", "textfont": font}, {"type": "scatter", "textfont": font}], "layout": {}}
    out = presented_spec(spec, scale=2.0)
    assert [t["textfont"]["size"] for t in out["data"]] == [20, 20]
