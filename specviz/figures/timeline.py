"""The token timeline: one row per step, one marker per drafted token plus the model's own token.

Drawn on Live decoding (as the run goes) and on Step through (a window around the current step,
a click selects a step; the browser player draws the same spec, TIMELINE_HIGHLIGHT included).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from specviz.figures.palette import COLORS, COPIED_LABEL, COPIED_MARKER, FONT, KINDS, LABELS, SYMBOLS, Kind, legend_only
from specviz.figures.spec import Spec, to_figure
from specviz.figures.step import Cell, copied_words, step_cells
from specviz.figures.text import esc, esc_sentence, fmt_num, visible
from specviz.trace import Trace

__all__ = ["TIMELINE_HIGHLIGHT", "timeline_figure", "timeline_gamma", "timeline_spec", "window"]


def window(n_steps: int, current: int, size: int = 24) -> tuple[int, int]:
    """[start, stop) of at most `size` steps around `current`, clamped to the trace."""
    size = max(1, min(size, n_steps))
    start = min(max(0, current - size // 3), max(0, n_steps - size))
    return start, start + size


def timeline_gamma(trace: Trace) -> int:
    """The timeline's number of draft columns: the trace's longest draft (or meta.gamma), for every
    window, so the columns stay put while the reader steps."""
    steps = trace["steps"]
    return max([int(trace.get("meta", {}).get("gamma", 1))] + [len(s["draft"]) for s in steps])


def _hover(cell: Cell) -> str:
    where = f"draft {cell.position + 1}" if not cell.from_model else f"evaluation model's token (after {cell.position})"
    lines = [
        f"step {cell.step} · {where}",
        f"token '{visible(cell.token)}' (id {cell.token_id})",
        LABELS[cell.kind],
    ]
    if cell.copied:
        lines.append(copied_words(cell.copied))
    if not cell.from_model:
        lines.append(f"q = {fmt_num(cell.q)}   p = {fmt_num(cell.p)}")
    lines.append(cell.test)
    if cell.stopped:
        lines.append(cell.stopped)
    return "<br>".join(esc_sentence(line, 120) for line in lines)


# the current step's band on the timeline; the browser player draws the same (specviz.teach.player)
TIMELINE_HIGHLIGHT = dict(
    type="rect", xref="paper", x0=0, x1=1, fillcolor="#FFE9A8", opacity=0.6, line=dict(width=0), layer="below"
)


def timeline_spec(trace: Trace, start: int, stop: int, selected: int | None = None) -> dict[str, Any]:
    """`timeline_figure` as a plain Plotly dict (specviz.figures.spec)."""
    steps = trace["steps"]
    start, stop = max(0, start), min(len(steps), stop)
    gamma = timeline_gamma(trace)
    by_kind: dict[Kind, list[Cell]] = {k: [] for k in KINDS}
    for k in range(start, stop):
        for cell in step_cells(trace, k):
            by_kind[cell.kind].append(cell)
    fig = Spec()
    # a token's label gets the room of one column: at gamma 16 twelve characters would overlap the next
    chars = max(3, min(12, 90 // (gamma + 2)))
    for kind in KINDS:
        cells = by_kind[kind]
        if not cells:
            fig.add_trace(legend_only(kind))
            continue
        fig.add_trace(
            dict(
                type="scatter",
                x=[gamma + 1 if c.from_model else c.position + 1 for c in cells],
                y=[c.step for c in cells],
                mode="markers+text",
                name=LABELS[kind],
                legendgroup=kind,
                text=[esc(c.token, chars) for c in cells],
                textposition="middle right",
                textfont=dict(size=12, color="#202020", **FONT),
                hovertext=[_hover(c) for c in cells],
                hovertemplate="%{hovertext}<extra></extra>",
                customdata=[c.step for c in cells],
                marker=dict(color=COLORS[kind], symbol=SYMBOLS[kind], size=13, line=dict(width=2, color=COLORS[kind])),
                # a click selects the step; do not fade the other markers
                selected=dict(marker=dict(opacity=1)),
                unselected=dict(marker=dict(opacity=1)),
                cliponaxis=False,
            )
        )
    copied = [c for kind in KINDS for c in by_kind[kind] if c.copied]
    if copied:  # a ring around each copied draft: its outcome marker keeps the colour, the ring the source
        fig.add_trace(
            dict(
                type="scatter",
                x=[c.position + 1 for c in copied],
                y=[c.step for c in copied],
                mode="markers",
                name=COPIED_LABEL,
                marker=COPIED_MARKER,
                hoverinfo="skip",
                cliponaxis=False,
            )
        )
    if selected is not None and start <= selected < stop:
        fig.add_shape(**TIMELINE_HIGHLIGHT, y0=selected - 0.5, y1=selected + 0.5)
    rows = max(1, stop - start)
    fig.update_layout(
        height=130 + 28 * rows,
        margin=dict(l=10, r=10, t=80, b=10),
        legend=dict(orientation="h", yref="container", yanchor="top", y=1.0, x=0),
        clickmode="event+select",
        dragmode=False,
        hovermode="closest",
        plot_bgcolor="white",
    )
    fig.update_xaxes(
        tickvals=[*range(1, gamma + 1), gamma + 1],
        ticktext=[f"draft {j}" if gamma <= 8 else str(j) for j in range(1, gamma + 1)] + ["model's token"],
        title="draft position" if gamma > 8 else None,
        range=[0.6, gamma + 1 + max(0.9, chars * 0.09)],  # room for the model's token's label
        side="top",
        showgrid=False,
        zeroline=False,
        fixedrange=True,
    )
    fig.update_yaxes(
        tickvals=list(range(start, stop)),
        ticktext=[f"step {k}" for k in range(start, stop)],
        range=[stop - 0.5, start - 0.5],  # step 0 on top
        showgrid=True,
        gridcolor="#F0F0F0",
        zeroline=False,
        fixedrange=True,
    )
    return fig.to_dict()


def timeline_figure(trace: Trace, start: int, stop: int, selected: int | None = None) -> go.Figure:
    """One row per step in [start, stop), one marker per drafted token plus the model's token.

    Columns 1..gamma are the draft positions (gamma: the trace's longest draft, `timeline_gamma`); the
    last column is the evaluation model's token. Markers (not a heatmap) so that a click selects the
    step: y is the step index.
    """
    return to_figure(timeline_spec(trace, start, stop, selected))
