"""What the figures' tests share: hostile token text, and reading a figure's strings and points."""

from __future__ import annotations

import copy
from typing import Any

import plotly.graph_objects as go

from specviz import figures as fg
from specviz.trace import Trace

HOSTILE = "<script>alert(1)</script>"


def hostile_toy() -> Trace:
    """The toy step with nasty token text in every place a token can appear."""
    trace = copy.deepcopy(fg.toy_trace())
    step = trace["steps"][0]
    step["draft"][0]["token"] = HOSTILE
    step["draft"][1]["token"] = " \n"
    step["draft"][2]["token"] = "<b>bold</b>&amp;"
    step["verify"][2]["top"][0]["token"] = HOSTILE + "x"
    step["next"]["token"] = "<img src=x onerror=alert(1)>"
    step["next"]["top"][0]["token"] = "<img src=x onerror=alert(1)>"
    return trace


def evil_trace() -> Trace:
    """The toy trace with HOSTILE as its target's name and as every token."""
    trace = copy.deepcopy(fg.toy_trace())
    trace["meta"]["target"]["name"] = HOSTILE
    for step in trace["steps"]:
        for d in step["draft"]:
            d["token"] = HOSTILE
        if step.get("next"):
            step["next"]["token"] = HOSTILE
    return trace


def figure_strings(fig: go.Figure) -> list[str]:
    """Every string Plotly will render: trace text, hovers, names, tick labels, annotations, titles."""
    out: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, str):
            out.append(obj)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                walk(v)

    walk(fig.to_plotly_json())
    return out


def points(fig: go.Figure, name: str) -> list[Any]:
    """The x values of the figure's trace called `name`, gaps left out."""
    tr = next(t for t in fig.data if t.name == name)
    return [x for x in (tr.x or []) if x is not None]
