"""The Speedup lab's figures: the theory's curves for α, γ and c, a fixed budget, the live sweep, and the
draft tree sized to this machine (`--tree auto`'s measurements).

Pure functions to a Plotly figure; no Streamlit. Run names come from traces, which may be
hostile: they pass through text.esc_name before they are shown.

The textbook's speedup assumes a verification pass over γ + 1 positions costs what a one-token
pass costs. `PassCosts` holds a machine's measured pass times instead, and `speedup_figure` draws
the formula with them (step time γc + T(γ + 1)/T(1) one-token passes, theory.speedup_at_costs) beside
the ideal curve. The marks follow the palette: theory in IDEAL_LINE, measured in MEASURED_LINE and
MEASURED_MARKER, the best γ in CHOSEN_MARKER, your γ in CURRENT_MARKER — never an outcome's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from specviz.core import theory
from specviz.figures.palette import (
    BASELINE_LINE,
    CHOSEN_MARKER,
    CURRENT_MARKER,
    IDEAL_LINE,
    LAYOUT,
    MEASURED_LINE,
    MEASURED_MARKER,
    NEUTRAL,
    P_COLOR,
    SERIES,
)
from specviz.figures.text import esc, esc_name

__all__ = [
    "BUDGET_WORDS",
    "PassCosts",
    "SweepRow",
    "budget_figure",
    "numerics_figure",
    "sizing_figure",
    "speedup_figure",
    "sweep_figure",
    "tokens_figure",
]


@dataclass(frozen=True)
class PassCosts:
    """One machine's measured milliseconds for an evaluation pass over k positions, and where they come from.

    `speedup` is the textbook's speedup with these costs instead of "verification costs one pass":
    a step of γ drafts costs γ draft tokens plus one pass over γ + 1 positions (T(γ + 1) / T(1)
    one-token passes, from the measured curve) and yields theory.expected_tokens(α, γ); the
    evaluation model alone costs one one-token pass a token: theory.speedup_at_costs.
    """

    ms: Mapping[int, float]  # positions k → ms of one pass over k new positions
    source: str  # where the numbers come from, e.g. "docs/results/pass-cost.json (scripts/pass_cost.py), float32"
    machine: str  # which machine measured them, in words
    notes: tuple[str, ...] = field(default=())

    def ratio(self, positions: int) -> float:
        """T(positions) / T(1): one verification pass in one-token passes (1.0 in the ideal)."""
        return theory.interpolate_cost(dict(self.ms), positions) / theory.interpolate_cost(dict(self.ms), 1)

    def speedup(self, alpha: float, gamma: int, c: float, c_gamma: int) -> float:
        """Speedup over the evaluation model alone with these pass costs.

        c is defined as everywhere in specviz: a draft token's time over one verification pass, here the
        pass over c_gamma + 1 positions at which it was measured (or set); its ms stay fixed as γ varies."""
        # theory.speedup_at_costs with both costs in one-token passes (no second copy of the formula)
        draft_cost = c * self.ratio(c_gamma + 1)  # a draft token in one-token passes, fixed as γ varies
        return theory.speedup_at_costs(alpha, gamma, draft_cost, self.ratio(gamma + 1))

    def best_gamma(self, alpha: float, c: float, c_gamma: int, max_gamma: int = theory.MAX_GAMMA) -> tuple[int, float]:
        """The γ in 1..max_gamma with the highest speedup under these costs (the smallest on ties)."""
        return max(
            ((g, self.speedup(alpha, g, c, c_gamma)) for g in range(1, max_gamma + 1)), key=lambda t: (t[1], -t[0])
        )


# legends under the plot: above it, four or five entries in a half-page column covered the curves
_BELOW = dict(orientation="h", x=0, y=-0.2, yanchor="top")
_DASHES = ("solid", "dash", "dot", "dashdot")


def tokens_figure(
    alpha: float, gamma: int, points: Sequence[theory.Measured] = (), max_gamma: int = theory.MAX_GAMMA
) -> go.Figure:
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
            line=IDEAL_LINE,
            marker=dict(size=6),
            hovertemplate="γ = %{x}: %{y:.2f} tokens per step<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[gamma],
            y=[theory.expected_tokens(alpha, gamma)],
            mode="markers",
            name=f"your γ = {gamma}",
            marker=CURRENT_MARKER,
            hovertemplate="γ = %{x}: %{y:.2f}<extra></extra>",
        )
    )
    if points:
        fig.add_trace(
            go.Scatter(
                x=[p.gamma for p in points],
                y=[p.tokens_per_step for p in points],
                mode="markers",  # names on hover: traces often share a γ, and labels would pile up
                text=[esc_name(p.name, 30) for p in points],
                name="measured (traces; hover for names)",
                marker=MEASURED_MARKER,
                customdata=[[p.alpha, p.expected_tokens_per_step, p.mean_drafts] for p in points],
                hovertemplate=(
                    "%{text}: %{y:.2f} tokens per step at γ = %{x}<br>its own α = %{customdata[0]:.2f} predicts "
                    "%{customdata[1]:.2f}<br>drafts per step actually proposed: %{customdata[2]:.2f}<extra></extra>"
                ),
            )
        )
    fig.update_layout(height=440, legend=_BELOW, **LAYOUT)
    fig.update_xaxes(title="γ (drafts per step)", tickvals=gs, fixedrange=True)
    fig.update_yaxes(title="tokens per evaluation pass", rangemode="tozero", fixedrange=True)
    return fig


def numerics_figure(
    alpha: float, c: float, gamma: int, setups: dict[str, PassCosts], max_gamma: int = theory.MAX_GAMMA
) -> go.Figure:
    """The same α and c under each numerics' measured pass costs (e.g. float32 and bfloat16 on one CPU),
    beside the ideal: why a CPU whose wide passes are slow loses what the formula promises. Each curve
    is relative to the evaluation model alone in that same dtype (its own one-token pass)."""
    gs = list(range(1, max_gamma + 1))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=gs, y=[theory.speedup(alpha, g, c) for g in gs], mode="lines", name="ideal (formula)", line=IDEAL_LINE,
            hovertemplate="γ = %{x}: %{y:.2f}× ideal<extra></extra>",
        )
    )  # fmt: skip
    for i, (name, costs) in enumerate(setups.items()):
        fig.add_trace(
            go.Scatter(
                x=gs,
                y=[costs.speedup(alpha, g, c, gamma) for g in gs],
                mode="lines+markers",
                name=esc_name(name, 40),
                # colours cycle; the dash shifts each cycle, so no two set-ups of up to 16 look alike
                line=dict(color=SERIES[i % len(SERIES)], width=2, dash=_DASHES[(i + i // len(SERIES)) % len(_DASHES)]),
                customdata=[costs.ratio(g + 1) for g in gs],
                hovertemplate=(
                    f"{esc_name(name, 40)}: γ = %{{x}}, %{{y:.2f}}×<br>a pass over γ + 1 positions costs "
                    "%{customdata:.2f} one-token passes<extra></extra>"
                ),
            )
        )
    fig.add_hline(y=1.0, line=BASELINE_LINE, annotation_text="evaluation model alone (1×)")
    # one entry a row at the right: six or more set-ups wrap below the plot onto the axis title
    fig.update_layout(height=380, legend=dict(orientation="v", x=1.02, xanchor="left", y=1, yanchor="top"), **LAYOUT)
    fig.update_xaxes(title="γ (drafts per step)", tickvals=gs, fixedrange=True)
    fig.update_yaxes(title="speedup (×)", rangemode="tozero", fixedrange=True)
    return fig


def speedup_figure(
    alpha: float, c: float, gamma: int, max_gamma: int = theory.MAX_GAMMA, costs: PassCosts | None = None
) -> go.Figure:
    """Speedup over γ for this α and c: the ideal formula's curve (verification costs one one-token pass)
    and, with `costs`, the same formula with a machine's measured pass costs; the best γ of each
    marked with a triangle, your γ ringed, 1× dashed."""
    gs = list(range(1, max_gamma + 1))
    g_best, s_best = theory.best_gamma(alpha, c, max_gamma)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=gs,
            y=[theory.speedup(alpha, g, c) for g in gs],
            mode="lines+markers",
            name="ideal (formula)",  # its assumption is in the caption: a legend entry that long is cut
            line=IDEAL_LINE,
            marker=dict(size=6),
            hovertemplate="γ = %{x}: %{y:.2f}× if verifying γ + 1 positions cost one pass<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[g_best],
            y=[s_best],
            mode="markers",
            name=f"best γ = {g_best} ({s_best:.2f}×)",
            marker=CHOSEN_MARKER,
            hovertemplate="best (ideal): γ = %{x}, %{y:.2f}×<extra></extra>",
        )
    )
    if costs is not None:
        fig.add_trace(
            go.Scatter(
                x=gs,
                y=[costs.speedup(alpha, g, c, gamma) for g in gs],
                mode="lines+markers",
                name="with measured pass costs",
                line=MEASURED_LINE,
                marker=dict(size=6, color=MEASURED_LINE["color"], symbol="square"),
                customdata=[costs.ratio(g + 1) for g in gs],
                hovertemplate=(
                    "γ = %{x}: %{y:.2f}×<br>verifying γ + 1 positions costs %{customdata:.2f} one-token passes"
                    f"<br>measured on {esc_name(costs.machine, 60)}<extra></extra>"
                ),
            )
        )
        m_best, ms_best = costs.best_gamma(alpha, c, gamma, max_gamma)
        fig.add_trace(
            go.Scatter(
                x=[m_best],
                y=[ms_best],
                mode="markers",
                name=f"best γ with measured costs = {m_best} ({ms_best:.2f}×)",
                marker={**CHOSEN_MARKER, "symbol": "triangle-up-open", "line": dict(width=2.5)},
                hovertemplate="best (measured costs): γ = %{x}, %{y:.2f}×<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[gamma],
            y=[theory.speedup(alpha, gamma, c)],
            mode="markers",
            name=f"your γ = {gamma}",
            marker=CURRENT_MARKER,
            hovertemplate="γ = %{x}: %{y:.2f}×<extra></extra>",
        )
    )
    fig.add_hline(y=1.0, line=BASELINE_LINE, annotation_text="evaluation model alone (1×)")
    fig.update_layout(height=440, legend=_BELOW, **LAYOUT)
    fig.update_xaxes(title="γ (drafts per step)", tickvals=gs, fixedrange=True)
    fig.update_yaxes(title="speedup (×)", rangemode="tozero", fixedrange=True)
    return fig


BUDGET_WORDS: dict[str, str] = {
    "passes": "evaluation passes",
    "positions": "scored positions (γ + 1 per pass)",
    "compute": "pass-times of compute (a step costs 1 + γc)",
}


def budget_figure(
    alpha: float, budget: int, unit: theory.BudgetUnit, c: float = 0.0, max_gamma: int = theory.MAX_GAMMA
) -> go.Figure:
    """Expected tokens from a fixed verification budget, one bar per γ, the best one marked."""
    gs = list(range(1, max_gamma + 1))
    ys = [theory.budget_yield(alpha, g, budget, unit, c) for g in gs]
    best = max(range(len(gs)), key=lambda i: (ys[i], -i))
    what = BUDGET_WORDS[unit]
    fig = go.Figure(
        go.Bar(
            x=gs,
            y=ys,
            # the best γ in the chosen-setting colour (black), the rest neutral grey: no outcome colours here
            marker=dict(color=[CHOSEN_MARKER["color"] if i == best else NEUTRAL for i in range(len(gs))]),
            text=[f"<b>{y:.0f}</b>" if i == best else f"{y:.0f}" for i, y in enumerate(ys)],
            textposition="outside",
            hovertemplate=f"γ = %{{x}}: %{{y:.1f}} tokens from {budget} {what}<extra></extra>",
            name="expected tokens",
        )
    )
    title = f"budget: {budget} {what} · the best γ, {gs[best]}, in black"
    fig.update_layout(height=340, title=dict(text=title, font=dict(size=13)), **LAYOUT)
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
            line={**IDEAL_LINE, "dash": "dot"},
            marker=dict(size=8),
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
            marker={**MEASURED_MARKER, "size": 12},
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
            name="predicted from α and c (ideal formula)",
            line={**IDEAL_LINE, "dash": "dot"},
            marker=dict(size=8),
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
            marker={**MEASURED_MARKER, "size": 12},
            showlegend=baseline_tps is not None,
            hovertemplate="%{y:.2f}× measured<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.add_hline(y=1.0, line=BASELINE_LINE, row=1, col=2)
    fig.update_layout(height=380, legend=dict(orientation="h", y=-0.25), **LAYOUT)
    fig.update_xaxes(tickvals=xs, ticktext=labels, fixedrange=True)
    fig.update_yaxes(rangemode="tozero", fixedrange=True)
    return fig


def _shape_of(candidate: dict[str, Any], depth: int = 8) -> str:
    return f"dynamic:{int(candidate['nodes'])}:{depth}:{int(candidate.get('topk', 4))}"


def _race_points(auto: dict[str, Any], best: dict[str, Any] | None) -> go.Scatter | None:
    """The check after the prediction (meta.tree.auto.race): the predicted shape and the run's chain decoding
    the calibration text, tokens/s timed end to end, at the prediction's N and the chain's gamma. None
    without a race; a side whose numbers are not numbers (a hostile trace) is left out."""
    race = auto.get("race")
    if not isinstance(race, dict):
        return None
    pred, chain = (race.get(k) if isinstance(race.get(k), dict) else {} for k in ("predicted", "chain"))
    points = []
    for key, side, x in (("predicted", pred, best["nodes"] if best else None), ("chain", chain, chain.get("gamma"))):
        speed = side.get("tokens_per_s")
        if isinstance(x, int | float) and isinstance(speed, int | float) and not isinstance(speed, bool):
            kept = " (runs)" if race.get("kept") == key else ""
            points.append((x, speed, f"{esc(str(side.get('shape', '')), 40)}: {speed:.1f} tok/s measured{kept}"))
    if not points:
        return None
    return go.Scatter(
        x=[x for x, _, _ in points],
        y=[y for _, y, _ in points],
        mode="markers",
        marker=MEASURED_MARKER,
        text=[t for _, _, t in points],
        hovertemplate="%{text}<extra></extra>",
        name="measured end to end on the calibration text",
    )


def sizing_figure(auto: dict[str, Any]) -> go.Figure:
    """`--tree auto`'s measurements (meta.tree.auto): left, what one evaluation pass over k positions
    costs on this machine; right, the expected tokens per second of each node budget N (the measured
    acceptance of its first N nodes over the predicted step time), the chosen one marked with the
    palette's chosen-setting triangle, and the evaluation model alone's timed speed dashed (where the
    sizing timed it: meta.tree.auto.alone_ms); a budget above that line is expected to win. Where the
    prediction was checked (meta.tree.auto.race), the predicted tree's and the run's chain's measured
    speeds are squares; when the chain won, the triangle reads "predicted best"."""
    costs = sorted((int(k), float(v)) for k, v in (auto.get("costs_ms") or {}).items())
    cands = auto.get("candidates") or []
    chosen = str(auto.get("chosen", ""))
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.12,
        subplot_titles=["one evaluation pass over k positions", "expected speed of a tree with N nodes"],
    )
    if costs:
        base = costs[0][1]
        fig.add_trace(
            go.Scatter(
                x=[k for k, _ in costs],
                y=[v for _, v in costs],
                mode="lines+markers",
                line=dict(color=P_COLOR),
                customdata=[v / base for _, v in costs],
                hovertemplate="%{x} positions: %{y:.0f} ms (%{customdata:.2f}× one position)<extra></extra>",
                name="measured pass time",
            ),
            row=1,
            col=1,
        )
    if cands:
        # one series per branching K, in the palette's series colours (not outcomes: these are settings)
        for i, k in enumerate(sorted({int(c.get("topk", 4)) for c in cands})):
            rows = [c for c in cands if int(c.get("topk", 4)) == k]
            fig.add_trace(
                go.Scatter(
                    x=[c["nodes"] for c in rows],
                    y=[c["tokens_per_s"] for c in rows],
                    mode="lines+markers",
                    line=dict(color=SERIES[i % len(SERIES)]),
                    customdata=[[c["tokens_per_step"], c["step_ms"]] for c in rows],
                    hovertemplate=(
                        "N = %{x}: %{y:.1f} tok/s (%{customdata[0]:.2f} tokens per step, %{customdata[1]:.0f} ms per "
                        "step)<extra></extra>"
                    ),
                    name="a chain (K = 1)" if k == 1 else f"K = {k} children per node",
                ),
                row=1,
                col=2,
            )
        predicted = str(auto.get("predicted") or chosen)  # they differ when the race kept the run's chain
        best = next((c for c in cands if _shape_of(c) == predicted), None)
        if best is not None:
            fig.add_trace(
                go.Scatter(
                    x=[best["nodes"]],
                    y=[best["tokens_per_s"]],
                    mode="markers",
                    marker=CHOSEN_MARKER,
                    name=f"{'chosen' if predicted == chosen else 'predicted best'}: {esc(predicted, 30)}",
                    hoverinfo="skip",
                ),
                row=1,
                col=2,
            )
        if (raced := _race_points(auto, best)) is not None:
            fig.add_trace(raced, row=1, col=2)
        if alone := float(auto.get("alone_ms") or 0.0):  # timed decoding alone (older traces: not recorded)
            fig.add_hline(
                y=1e3 / alone,
                line=BASELINE_LINE,
                annotation_text=f"evaluation model alone ({1e3 / alone:.1f} tok/s, timed)",
                annotation_position="bottom right",
                row=1,
                col=2,
            )
    fig.update_layout(height=360, legend=dict(orientation="h", y=-0.25), **LAYOUT)
    fig.update_xaxes(title_text="positions k", row=1, col=1, fixedrange=True)
    fig.update_xaxes(title_text="nodes N", row=1, col=2, fixedrange=True)
    fig.update_yaxes(title_text="ms", row=1, col=1, rangemode="tozero", fixedrange=True)
    fig.update_yaxes(title_text="tokens / s", row=1, col=2, rangemode="tozero", fixedrange=True)
    return fig
