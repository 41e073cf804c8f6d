"""Figures: pure functions from a trace (or one of its steps) to a Plotly figure, plus the words.

No Streamlit here: the UI layer (specviz.ui) decides where a figure goes; this package decides
what it shows. One palette and one set of marker shapes stand for the five outcomes of a drafted
or generated token everywhere — colour plus shape, so the panels read without colour vision.
Token text from a trace goes through `esc` before it reaches a figure (text.py says why).

One module per page that has figures of its own, like specviz.ui:

| module     | what it draws                                                        | page (specviz/ui/)                  | tests/figures/          |
| ---------- | -------------------------------------------------------------------- | ----------------------------------- | ----------------------- |
| home.py    | step_picture: one step as boxes, proposed and kept                   | Home (home.py)                      | test_home.py    |
| replay.py  | the acceptance diagram and the distributions at one position (specs) | Step through (replay.py, player.py) | test_replay.py  |
| stats.py   | the verdict's words (theory.measure, theory.findings), the statistics charts, the scenario exercises' charts | Statistics (stats.py, engine.py), Exercises | test_stats.py |
| speedup.py | the theory's curves, the fixed budget, the live sweep, tree sizing | Speedup lab (speedup.py)            | test_speedup.py |
| compare.py | outputs on aligned rows, progress, divergence, the printable summary | Compare (compare.py)                | test_compare.py |

Live decoding draws only shared figures (timeline, step). Exercises draws its scenarios' charts with
stats.py (tau_figure, break_even_figure, pass_cost_figure, per_position_figure) and speedup.py.

Shared by several pages (they never import a page's module; tests/figures/test_init.py checks):

| module      | what                                                                   | used by                            | tests/figures/           |
| ----------- | ---------------------------------------------------------------------- | ---------------------------------- | ------------------------ |
| palette.py  | COLORS, SYMBOLS, LABELS per Kind; the neutral marks for what is not an outcome (SERIES, *_MARKER, *_LINE); presented (projector) | every figure, the sidebar's legend | test_palette.py |
| text.py     | token and prompt text: visible, literal, recent, esc, plural, the end mark | every page                         | test_text.py     |
| step.py     | a step's cells and words (step_cells, describe_*), output provenance    | Home, Live, Step through, Compare  | test_step.py     |
| gaps.py     | missing_parts: what a minimal trace lacks, and what that costs          | every page that reads a trace      | tests/formats/test_eventlog.py |
| timeline.py | the token timeline, its window and its highlighted step (specs)         | Live, Step through                 | test_timeline.py |
| tree.py     | draft trees: the tree, its attention mask, their words                  | Step through, Statistics           | test_tree.py     |
| toy.py      | toy_trace: the course's example as a trace, no model needed             | Home, the fallback sample, tests   | (every figure test)      |
| spec.py     | Spec: Plotly figures as plain dicts, to_figure, presented specs         | palette, the step figures, player  | test_spec.py             |

The step figures (timeline, replay, tree) are written as plain Plotly dicts (`*_spec`, with
specviz.figures.spec) because the browser player (specviz.teach.player) ships every step's figures at once;
`*_figure` turns a spec into a go.Figure for a server page.

This module re-exports the names callers use as `from specviz import figures as fg` (fg.visible,
fg.acceptance_spec, fg.COLORS …). The tree's, the Speedup lab's and Compare's figures are used
through their modules: `from specviz.figures import tree as ftree` (and speedup, compare).

The numbers every figure draws — α, γ, the cost ratio c, expected tokens, the speedups, the
verdict's findings — are computed in specviz.core.theory, never here: a figure takes them from
`theory.measure(trace)` (or the formulas) and draws them.

Imports: plotly, specviz.trace, specviz.core (theory) — never streamlit.
"""

from __future__ import annotations

from specviz.figures.gaps import Gap, missing_parts
from specviz.figures.home import step_picture
from specviz.figures.palette import COLORS, KINDS, LABELS, NEUTRAL, P_COLOR, Q_COLOR, SYMBOLS, Kind, presented
from specviz.figures.replay import (
    RAW_COLOR,
    RAW_NAME,
    acceptance_figure,
    acceptance_spec,
    distribution_figure,
    distribution_spec,
    residual_top,
)
from specviz.figures.stats import (
    accepted_lengths_figure,
    per_position_figure,
    timing_figure,
    tokens_per_step_figure,
    verdict,
)
from specviz.figures.step import Cell, OutTok, describe_next, describe_step, provenance, step_cells
from specviz.figures.text import (
    END_MARK,
    END_TOKEN_MARK,
    end_tokens,
    esc,
    literal,
    plural,
    readable_output,
    recent,
    visible,
)
from specviz.figures.timeline import TIMELINE_HIGHLIGHT, timeline_figure, timeline_gamma, timeline_spec, window
from specviz.figures.toy import toy_trace

__all__ = [
    "COLORS",
    "END_MARK",
    "END_TOKEN_MARK",
    "KINDS",
    "LABELS",
    "NEUTRAL",
    "P_COLOR",
    "Q_COLOR",
    "RAW_COLOR",
    "RAW_NAME",
    "SYMBOLS",
    "TIMELINE_HIGHLIGHT",
    "Cell",
    "Gap",
    "Kind",
    "OutTok",
    "acceptance_figure",
    "acceptance_spec",
    "accepted_lengths_figure",
    "describe_next",
    "describe_step",
    "distribution_figure",
    "distribution_spec",
    "end_tokens",
    "esc",
    "literal",
    "missing_parts",
    "per_position_figure",
    "plural",
    "presented",
    "provenance",
    "readable_output",
    "recent",
    "residual_top",
    "step_cells",
    "step_picture",
    "timeline_figure",
    "timeline_gamma",
    "timeline_spec",
    "timing_figure",
    "tokens_per_step_figure",
    "toy_trace",
    "verdict",
    "visible",
    "window",
]
