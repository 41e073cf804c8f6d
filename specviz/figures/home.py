"""The Home page's figure: one step in one picture (what was proposed, what was kept).

Home draws it for the course's example (specviz.figures.toy) with `describe_next`'s words.
"""

from __future__ import annotations

import plotly.graph_objects as go

from specviz.figures.palette import COLORS, FONT, KINDS, TINTS, legend_only
from specviz.figures.step import provenance, step_cells
from specviz.figures.text import esc, visible
from specviz.trace import Trace, byte_label

__all__ = ["step_picture"]


def step_picture(trace: Trace, k: int, prefix_chars: int = 18) -> go.Figure:
    """Two rows of boxes: what was proposed (prefix | drafts) and what was kept (prefix | accepted | model's token)."""
    cells = step_cells(trace, k)
    drafts = [c for c in cells if not c.from_model]
    model = [c for c in cells if c.from_model]
    before = byte_label(b"".join(t.raw for t in provenance(trace) if t.step < k))
    tail = trace.get("prompt", {}).get("text", "") + before
    tail = ("…" if len(tail) > prefix_chars else "") + tail[-prefix_chars:]
    fig = go.Figure()
    pw = 3.2  # the prefix box is wider than a token box

    def box(x0: float, y: float, label: str, fill: str, edge: str, dash: str = "solid", width: float = 1.0) -> None:
        fig.add_shape(
            type="rect",
            x0=x0 + 0.05,
            x1=x0 + width - 0.05,
            y0=y - 0.32,
            y1=y + 0.32,
            fillcolor=fill,
            line=dict(color=edge, width=2, dash=dash),
        )
        fig.add_annotation(x=x0 + width / 2, y=y, text=label, showarrow=False, font=dict(size=13, **FONT))

    for y, title in ((1, "proposed"), (0, "kept")):
        box(0, y, esc(tail.replace("\n", " ")), "#F4F4F4", "#BDBDBD", width=pw)
        fig.add_annotation(x=-0.1, y=y, text=f"<b>{title}</b>", showarrow=False, xanchor="right")
    labels = {id(c): esc(c.token, 12) for c in cells}
    longest = max((len(visible(c.token)[:12]) for c in cells), default=1)
    w = min(2.4, max(1.0, 0.13 * longest + 0.35))  # one width for every token box, from the longest label
    for c in drafts:
        fill = "#FFFFFF" if c.kind == "unevaluated" else TINTS[c.kind]  # not tested: an empty box
        dash = "dot" if c.kind == "unevaluated" else "solid"
        box(pw + c.position * w, 1, labels[id(c)], fill, COLORS[c.kind], dash, width=w)
        if c.kind == "accepted":
            box(pw + c.position * w, 0, labels[id(c)], fill, COLORS["accepted"], width=w)
    for c in model:
        fill = TINTS[c.kind]
        box(pw + c.position * w, 0, labels[id(c)], fill, COLORS[c.kind], width=w)
    for kind in KINDS:
        fig.add_trace(legend_only(kind, 11))
    width = pw + w * max(len(drafts), (model[0].position + 1) if model else 0)
    fig.update_layout(
        height=230,
        margin=dict(l=90, r=10, t=10, b=10),
        plot_bgcolor="white",
        legend=dict(orientation="h", yanchor="top", y=-0.02, x=0),
        dragmode=False,
    )
    fig.update_xaxes(visible=False, range=[-0.1, width + 0.1], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-0.6, 1.6], fixedrange=True)
    return fig
