"""The Speedup lab's figures: the theory's curves for α, γ and c, a fixed budget, and the live sweep.

Pure functions to a Plotly figure; no Streamlit. Run names come from traces, which may be
hostile: they pass through text._name before they are shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from specviz import theory
from specviz.figures.palette import COLORS, LAYOUT
from specviz.figures.text import _name

__all__ = ["BUDGET_WORDS", "SweepRow", "budget_figure", "speedup_figure", "sweep_figure", "tokens_figure"]

THEORY, MEASURED, MARK = "#404040", "#0072B2", "#D55E00"


def tokens_figure(alpha: float, gamma: int, points: Sequence[theory.Measured] = (), max_gamma: int = 12) -> go.Figure:
    """Expected tokens per step over γ for this α, with the γ + 1 ceiling and measured traces on top."""
    gs = list(range(1, max_gamma + 1))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=gs,
            y=[g + 1 for g in gs],
            mode="lines",
            name="ceiling γ + 1 (every draft accepted)",
            line=dict(color="#BBBBBB", dash="dot"),
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=gs,
            y=[theory.expected_tokens(alpha, g) for g in gs],
            mode="lines+markers",
            name=f"theory, α = {alpha:.2f}",
            line=dict(color=THEORY),
            hovertemplate="γ = %{x}: %{y:.2f} tokens per step<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[gamma],
            y=[theory.expected_tokens(alpha, gamma)],
            mode="markers",
            name=f"your γ = {gamma}",
            marker=dict(size=14, color=MARK, symbol="circle-open", line=dict(width=3)),
            hovertemplate="γ = %{x}: %{y:.2f}<extra></extra>",
        )
    )
    if points:
        fig.add_trace(
            go.Scatter(
                x=[p.gamma for p in points],
                y=[p.tokens_per_step for p in points],
                mode="markers",  # names on hover: traces often share a γ, and labels would pile up
                text=[_name(p.name, 30) for p in points],
                name="measured (traces; hover for names)",
                marker=dict(size=11, color=MEASURED, symbol="diamond"),
                customdata=[[p.alpha, p.predicted_tokens_per_step, p.mean_drafts] for p in points],
                hovertemplate=(
                    "%{text}: %{y:.2f} tokens per step at γ = %{x}<br>its own α = %{customdata[0]:.2f} predicts "
                    "%{customdata[1]:.2f}<br>drafts per step actually proposed: %{customdata[2]:.2f}<extra></extra>"
                ),
            )
        )
    fig.update_layout(height=360, legend=dict(orientation="h", y=1.15), **LAYOUT)
    fig.update_xaxes(title="γ (drafts per step)", tickvals=gs, fixedrange=True)
    fig.update_yaxes(title="tokens per evaluation pass", rangemode="tozero", fixedrange=True)
    return fig


def speedup_figure(alpha: float, c: float, gamma: int, max_gamma: int = 12) -> go.Figure:
    """Expected speedup over γ for this α and c, the best γ starred, your γ ringed, 1× dashed."""
    gs = list(range(1, max_gamma + 1))
    ys = [theory.speedup(alpha, g, c) for g in gs]
    g_best, s_best = theory.best_gamma(alpha, c, max_gamma)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=gs,
            y=ys,
            mode="lines+markers",
            name=f"theory, α = {alpha:.2f}, c = {c:.3f}",
            line=dict(color=THEORY),
            hovertemplate="γ = %{x}: %{y:.2f}×<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[g_best],
            y=[s_best],
            mode="markers",
            name=f"best γ = {g_best} ({s_best:.2f}×)",
            marker=dict(size=18, color=COLORS["bonus"], symbol="star"),
            hovertemplate="best: γ = %{x}, %{y:.2f}×<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[gamma],
            y=[theory.speedup(alpha, gamma, c)],
            mode="markers",
            name=f"your γ = {gamma}",
            marker=dict(size=14, color=MARK, symbol="circle-open", line=dict(width=3)),
            hovertemplate="γ = %{x}: %{y:.2f}×<extra></extra>",
        )
    )
    fig.add_hline(y=1.0, line=dict(color="#999999", dash="dash"), annotation_text="evaluation model alone (1×)")
    fig.update_layout(height=360, legend=dict(orientation="h", y=1.15), **LAYOUT)
    fig.update_xaxes(title="γ (drafts per step)", tickvals=gs, fixedrange=True)
    fig.update_yaxes(title="expected speedup (×)", rangemode="tozero", fixedrange=True)
    return fig


BUDGET_WORDS: dict[str, str] = {
    "passes": "evaluation passes",
    "positions": "scored positions (γ + 1 per pass)",
    "compute": "pass-times of compute (a step costs 1 + γc)",
}


def budget_figure(alpha: float, budget: int, unit: theory.BudgetUnit, c: float = 0.0, max_gamma: int = 12) -> go.Figure:
    """Expected tokens from a fixed verification budget, one bar per γ, the best one marked."""
    gs = list(range(1, max_gamma + 1))
    ys = [theory.budget_yield(alpha, g, budget, unit, c) for g in gs]
    best = max(range(len(gs)), key=lambda i: (ys[i], -i))
    what = BUDGET_WORDS[unit]
    fig = go.Figure(
        go.Bar(
            x=gs,
            y=ys,
            marker=dict(color=[COLORS["bonus"] if i == best else COLORS["accepted"] for i in range(len(gs))]),
            text=[f"{y:.0f}" for y in ys],
            textposition="outside",
            hovertemplate=f"γ = %{{x}}: %{{y:.1f}} tokens from {budget} {what}<extra></extra>",
            name="expected tokens",
        )
    )
    fig.update_layout(height=340, title=dict(text=f"budget: {budget} {what}", font=dict(size=13)), **LAYOUT)
    fig.update_xaxes(title="γ (drafts per step)", tickvals=gs, fixedrange=True)
    fig.update_yaxes(title="expected tokens", rangemode="tozero", fixedrange=True)
    return fig


# ---------------------------------------------------------------- the live sweep


@dataclass(frozen=True)
class SweepRow:
    label: str  # e.g. "γ = 4" or "threshold τ = 0.3, γ = 4"
    gamma: int
    rule: str
    tokens: int
    steps: int
    seconds: float  # wall time of the speculative run
    alpha: float | None  # None: the run drafted nothing
    c: float | None
    tokens_per_step: float
    predicted_tokens_per_step: float | None
    predicted_speedup: float | None
    measured_speedup: float | None  # tokens/s over the evaluation model alone's tokens/s

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


def sweep_figure(rows: Sequence[SweepRow], baseline_tps: float | None) -> go.Figure:
    """Measured against predicted: tokens per step (left) and speedup (right), one point per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("tokens per step", "speedup over the evaluation model alone"))
    # short ticks ("run 3"): the settings of each run are long, and rotated they ran into the legend;
    # the sweep's table lists every run by the same number with its full settings
    labels = [f"run {i + 1}" for i in range(len(rows))]
    xs = list(range(len(rows)))
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[r.predicted_tokens_per_step for r in rows],
            mode="lines+markers",
            name="predicted from the run's α",
            line=dict(color=THEORY, dash="dot"),
            marker=dict(symbol="circle-open", size=10),
            hovertemplate="%{y:.2f} predicted<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[r.tokens_per_step for r in rows],
            mode="markers",
            name="measured",
            marker=dict(color=MEASURED, size=12, symbol="diamond"),
            hovertemplate="%{y:.2f} measured<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[r.predicted_speedup for r in rows],
            mode="lines+markers",
            name="predicted from α and c",
            line=dict(color=THEORY, dash="dot"),
            marker=dict(symbol="circle-open", size=10),
            showlegend=False,
            hovertemplate="%{y:.2f}× predicted<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=[r.measured_speedup for r in rows],
            mode="markers",
            name="measured speedup",
            marker=dict(color=MARK, size=12, symbol="diamond"),
            showlegend=baseline_tps is not None,
            hovertemplate="%{y:.2f}× measured<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.add_hline(y=1.0, line=dict(color="#999999", dash="dash"), row=1, col=2)
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.25), **LAYOUT)
    fig.update_xaxes(tickvals=xs, ticktext=labels, fixedrange=True)
    fig.update_yaxes(rangemode="tozero", fixedrange=True)
    return fig
