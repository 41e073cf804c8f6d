"""Figure specs: Plotly figures as plain dicts (Plotly.js's own JSON), built without plotly's validators.

Why: building a `go.Figure` validates every property and costs tens of milliseconds; the browser
player (specviz.teach.player) ships every step's figures at once, so the step figures are written as
specs here and turned into `go.Figure` only where the server draws them (`to_figure`). The dicts
are what Plotly.js reads: the same picture on the server page, in the player and in a lesson file.

`Spec` offers the few figure methods the step figures use, with the semantics of plotly's
(`add_vrect`, `add_hline`, `update_xaxes` over every x axis, a one-row subplot grid), and
`presented_spec` scales a spec for a projector. Source for the conventions: plotly.py's
`basedatatypes.BaseFigure` and `plotly.subplots.make_subplots` (layout keys, axis domains, titles).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import plotly.graph_objects as go

__all__ = ["Spec", "merge", "presented_spec", "to_figure"]

_AXIS = re.compile(r"^([xy])axis(\d*)$")


def merge(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `new` into `into` (dicts merge, anything else replaces), as plotly's update does."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    return into


def _titled(axis: dict[str, Any]) -> dict[str, Any]:
    """title="x" as Plotly.js 3 reads it ({"text": "x"}; plotly.py converts it, Plotly.js no longer does)."""
    if isinstance(axis.get("title"), str):
        return {**axis, "title": {"text": axis["title"]}}
    return axis


class Spec:
    """A figure as a dict under construction: `data` (trace dicts with a "type") and `layout`."""

    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {}
        self._cols = 1

    def add_trace(self, trace: dict[str, Any], col: int = 1) -> None:
        """Append a trace dict (`{"type": "bar", ...}`); `col` places it in a `subplots` grid."""
        if self._cols > 1:
            suffix = "" if col == 1 else str(col)
            trace = {**trace, "xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}
        self.data.append(trace)

    def add_shape(self, **shape: Any) -> None:
        self.layout.setdefault("shapes", []).append(shape)

    def add_annotation(self, **annotation: Any) -> None:
        self.layout.setdefault("annotations", []).append(annotation)

    def add_vrect(self, x0: float, x1: float, **shape: Any) -> None:
        """A band over [x0, x1] in data units, the plot's full height (plotly's add_vrect)."""
        self.add_shape(type="rect", xref="x", yref="y domain", x0=x0, x1=x1, y0=0, y1=1, **shape)

    def add_hline(self, y: float, line: dict[str, Any], annotation_text: str | None = None) -> None:
        """A line across the plot at y, labelled at its top right (plotly's add_hline)."""
        self.add_shape(type="line", xref="x domain", yref="y", x0=0, x1=1, y0=y, y1=y, line=line)
        if annotation_text is not None:
            self.add_annotation(
                text=annotation_text,
                showarrow=False,
                xref="x domain",
                yref="y",
                x=1,
                y=y,
                xanchor="right",
                yanchor="bottom",
            )

    def update_layout(self, **layout: Any) -> None:
        merge(self.layout, layout)

    def _axes(self, letter: str) -> list[str]:
        names = [f"{letter}axis"] + [f"{letter}axis{c}" for c in range(2, self._cols + 1)]
        return names + [k for k in self.layout if _AXIS.match(k) and k.startswith(letter) and k not in names]

    def update_xaxes(self, **axis: Any) -> None:
        for name in self._axes("x"):
            merge(self.layout.setdefault(name, {}), _titled(axis))

    def update_yaxes(self, **axis: Any) -> None:
        for name in self._axes("y"):
            merge(self.layout.setdefault(name, {}), _titled(axis))

    def subplots(self, cols: int, spacing: float, titles: list[str], title_size: int = 16) -> None:
        """One row of `cols` panels sharing the y axis, titled (make_subplots(rows=1, shared_yaxes=True);
        its titles are 16 px)."""
        self._cols = cols
        width = (1 - spacing * (cols - 1)) / cols
        for c in range(1, cols + 1):
            x0 = (width + spacing) * (c - 1)
            suffix = "" if c == 1 else str(c)
            self.layout[f"xaxis{suffix}"] = {"anchor": f"y{suffix}", "domain": [x0, x0 + width]}
            y: dict[str, Any] = {"anchor": f"x{suffix}", "domain": [0.0, 1.0]}
            if c > 1:
                y.update(matches="y", showticklabels=False)
            self.layout[f"yaxis{suffix}"] = y
            self.add_annotation(
                text=titles[c - 1],
                showarrow=False,
                font={"size": title_size},
                x=x0 + width / 2,
                xanchor="center",
                xref="paper",
                y=1.0,
                yanchor="bottom",
                yref="paper",
            )

    def to_dict(self) -> dict[str, Any]:
        """The spec: {"data": [...], "layout": {...}}, JSON-ready."""
        return {"data": self.data, "layout": self.layout}


def _fresh(value: Any) -> Any:
    """A copy in which no dict or list appears twice (JSON's view of the spec)."""
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fresh(v) for v in value]
    return value


def to_figure(spec: dict[str, Any]) -> go.Figure:
    """The spec as a validated `go.Figure` (for st.plotly_chart and the tests)."""
    return go.Figure(spec)


def presented_spec(spec: dict[str, Any], scale: float = 1.6) -> dict[str, Any]:
    """A copy of a spec for a projector: every font `scale` times larger (the global one, ticks, axis
    titles, legend, annotations, trace text) and the figure taller by half that growth, margins grown
    with the text they hold, so that each panel reads from the back of a room."""
    out = _fresh(spec)  # not deepcopy: it keeps dicts that traces share shared, and each would grow twice
    layout = out.setdefault("layout", {})
    base = (layout.get("font") or {}).get("size") or 12

    def grow(holder: dict[str, Any], key: str) -> None:
        font = holder.setdefault(key, {})
        font["size"] = (font.get("size") or base) * scale

    layout.setdefault("font", {})["size"] = base * scale
    axes = [k for k in layout if _AXIS.match(k)]
    for name in {"xaxis", "yaxis", *axes}:
        axis = layout.setdefault(name, {})
        grow(axis, "tickfont")
        title = axis.get("title")
        if not isinstance(title, dict):
            title = axis["title"] = {} if title is None else {"text": title}
        grow(title, "font")
    grow(layout.setdefault("legend", {}), "font")
    for ann in layout.get("annotations", []):
        grow(ann, "font")
    for trace in out.get("data", []):
        if (trace.get("textfont") or {}).get("size"):
            trace["textfont"]["size"] *= scale
    if layout.get("height"):
        layout["height"] = int(layout["height"] * (1 + (scale - 1) / 2))
    margin = layout.get("margin") or {}
    for side in ("l", "r", "t", "b"):
        if margin.get(side) is not None:
            margin[side] *= scale
    return out
