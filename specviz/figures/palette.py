"""The palette: one colour and one marker shape per kind of token, everywhere; fonts and layout.

Colour plus shape for each of the five outcomes of a drafted or generated token (Okabe–Ito
colours, safe for the common colour-vision deficiencies), so the panels read without colour
vision. `presented` scales a finished figure for a projector.
"""

from __future__ import annotations

from typing import Any, Literal

import plotly.graph_objects as go

from specviz import figspec
from specviz.figspec import to_figure

__all__ = [
    "COLORS",
    "FONT",
    "KINDS",
    "LABELS",
    "LAYOUT",
    "NEUTRAL",
    "P_COLOR",
    "Q_COLOR",
    "SYMBOLS",
    "TINTS",
    "Kind",
    "legend_only",
    "presented",
]


Kind = Literal["accepted", "rejected", "unevaluated", "correction", "bonus"]
KINDS: tuple[Kind, ...] = ("accepted", "rejected", "unevaluated", "correction", "bonus")
# Okabe–Ito colours (safe for the common colour-vision deficiencies), each with its own shape
COLORS: dict[Kind, str] = {
    "accepted": "#009E73",  # bluish green
    "rejected": "#D55E00",  # vermillion
    "unevaluated": "#9E9E9E",  # grey
    "correction": "#0072B2",  # blue
    "bonus": "#CC79A7",  # reddish purple
}
SYMBOLS: dict[Kind, str] = {
    "accepted": "circle",
    "rejected": "x",
    "unevaluated": "circle-open",
    "correction": "diamond",
    "bonus": "star",
}
LABELS: dict[Kind, str] = {
    "accepted": "accepted draft",
    "rejected": "rejected draft",
    "unevaluated": "never evaluated",
    "correction": "correction (evaluation model)",
    "bonus": "bonus (evaluation model)",
}
# each outcome's light tint, for a table cell or a token's background (the app's theme has the same)
TINTS: dict[Kind, str] = {
    "accepted": "#CDEEE4",
    "rejected": "#F7DCCC",
    "unevaluated": "#EEEEEE",
    "correction": "#CCE3F0",
    "bonus": "#F5E4EE",
}
P_COLOR, Q_COLOR, NEUTRAL = "#404040", "#A0A0A0", "#D9D9D9"
FONT = dict(family="DejaVu Sans Mono, Menlo, Consolas, monospace")
# the learning pages' and the tree's figures: no zoom or pan, a white plot, tight margins
LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white", dragmode=False)


def legend_only(kind: Kind, size: int = 12) -> dict[str, Any]:
    """A legend entry for `kind` with no points (a kind the figure shows none of, or draws as shapes)."""
    return dict(
        type="scatter",
        x=[None],
        y=[None],
        mode="markers",
        name=LABELS[kind],
        legendgroup=kind,
        marker=dict(color=COLORS[kind], symbol=SYMBOLS[kind], size=size, line=dict(width=2, color=COLORS[kind])),
    )


def presented(fig: go.Figure, scale: float = 1.6) -> go.Figure:
    """A copy of `fig` for a projector: every font `scale` times larger, the figure taller
    (specviz.figspec.presented, which the browser player applies to its specs too)."""
    return to_figure(figspec.presented(fig.to_plotly_json(), scale))
