"""The palette: one colour and one marker shape per kind of token, everywhere; fonts and layout.

Colour plus shape for each of the five outcomes of a drafted or generated token (Okabe–Ito
colours, safe for the common colour-vision deficiencies), so the panels read without colour
vision. `presented` scales a finished figure for a projector.

One legend everywhere: an outcome's colour and shape mean that outcome and nothing else. What is
not a token's outcome — two traces side by side, the best or chosen setting, a trace's measured
point, the formula's ideal curve against one with measured costs — takes the neutral marks below
(SERIES, CHOSEN_MARKER, CURRENT_MARKER, MEASURED_MARKER, IDEAL_LINE, MEASURED_LINE, BASELINE_LINE),
which never reuse an outcome's colour (OUTCOME_COLORS) or the bonus ★ (OUTCOME_SYMBOLS).
"""

from __future__ import annotations

from typing import Any, Literal

import plotly.graph_objects as go

from specviz.figures import spec as figspec
from specviz.figures.spec import to_figure

__all__ = [
    "BASELINE_LINE",
    "CHOSEN_MARKER",
    "COLORS",
    "COPIED_LABEL",
    "COPIED_MARKER",
    "CURRENT_MARKER",
    "FONT",
    "IDEAL_LINE",
    "KINDS",
    "LABELS",
    "LAYOUT",
    "MEASURED_LINE",
    "MEASURED_MARKER",
    "NEUTRAL",
    "OUTCOME_COLORS",
    "OUTCOME_SYMBOLS",
    "P_COLOR",
    "Q_COLOR",
    "REFERENCE_MARKER",
    "SERIES",
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
    "unevaluated": "not tested",  # scored in the pass, never put to the test (a chain: after a rejection)
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

# ---------------------------------------------------------------- marks that are not token outcomes

# the outcome colours and the shapes only an outcome may take (the ★ is the bonus token's)
OUTCOME_COLORS: frozenset[str] = frozenset(c.upper() for c in (*COLORS.values(), *TINTS.values()))
OUTCOME_SYMBOLS: frozenset[str] = frozenset({"star", "star-open", "star-dot", "star-open-dot"})
# several traces or runs side by side, in order (trace A, trace B, …): Paul Tol's indigo, olive and
# sand, then black; none is an outcome's colour, and A and B differ in lightness as well as hue
SERIES: tuple[str, ...] = ("#332288", "#999933", "#DDCC77", "#000000")
# the formula's ideal curve (theory.IDEAL_WORDS: verification costs one 1-token pass), solid dark grey;
# the same formula with measured pass costs, dashed wine: a legend tells "ideal" from "measured"
IDEAL_LINE: dict[str, Any] = dict(color=P_COLOR, dash="solid", width=2)
MEASURED_LINE: dict[str, Any] = dict(color="#882255", dash="dash", width=2)
# the evaluation model alone (1× in a speedup chart, 1 token per pass)
BASELINE_LINE: dict[str, Any] = dict(color="#7F7F7F", dash="dash", width=1)
# the best (or chosen) setting: a black triangle, never the bonus ★
CHOSEN_MARKER: dict[str, Any] = dict(color="#000000", symbol="triangle-up", size=16)
# the setting the reader picked ("your γ"): an open black hexagon around the curve's point
CURRENT_MARKER: dict[str, Any] = dict(color="#000000", symbol="hexagon-open", size=15, line=dict(width=2.5))
# a draft copied from earlier text (the prompt-lookup fallback): an open black ring around its outcome marker,
# so the outcome keeps its own colour and the ring says only where the draft came from
COPIED_MARKER: dict[str, Any] = dict(color="#000000", symbol="circle-open", size=23, line=dict(width=1.5))
COPIED_LABEL = "copied from earlier text"
# "this trace (measured)": a trace's own measured number placed on a theory chart, a wine square
MEASURED_MARKER: dict[str, Any] = dict(color="#882255", symbol="square", size=11)
# the evaluation model alone's own tokens, as a row beside the speculative runs
REFERENCE_MARKER: dict[str, Any] = dict(color=P_COLOR, symbol="square", size=9)
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
    (specviz.figures.spec.presented_spec, which the browser player applies to its specs too)."""
    return to_figure(figspec.presented_spec(fig.to_plotly_json(), scale))
