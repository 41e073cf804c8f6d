"""Statistics: the cost model (α, the cost ratio c, the speedup they imply), the verdict, the charts.

The Statistics page draws them for a trace; `per_position_figure` and `accepted_lengths_figure`
also draw a serving engine's counters (specviz.ui.engine, on Statistics and Compare).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from specviz.figures.palette import COLORS, P_COLOR, Q_COLOR
from specviz.trace import Trace, summarize

__all__ = [
    "Costs",
    "accepted_lengths_figure",
    "costs",
    "expected_tokens",
    "implied_speedup",
    "per_position_figure",
    "timing_figure",
    "tokens_per_step_figure",
    "verdict",
]


def expected_tokens(alpha: float, gamma: int) -> float:
    """(1 − α^(γ+1)) / (1 − α): expected tokens per step when each draft is accepted with probability α."""
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def implied_speedup(alpha: float, gamma: int, c: float) -> float:
    """(1 − α^(γ+1)) / ((1 − α)(γc + 1)): expected speedup over target-only decoding."""
    return expected_tokens(alpha, gamma) / (gamma * c + 1.0)


@dataclass(frozen=True)
class Costs:
    alpha: float | None  # None: nothing drafted, no acceptance measured
    gamma: int
    steps: int
    tokens_per_step: float
    expected_tokens_per_step: float | None
    draft_ms_per_token: float | None  # mean time to draft one token
    verify_ms_per_step: float | None  # mean time of one verification pass
    c: float | None  # draft_ms_per_token / verify_ms_per_step
    speedup: float | None  # ideal: implied by alpha, gamma and c with verification costing one target pass
    best_gamma: int | None
    best_speedup: float | None
    draft_kind: str
    # measured beside the run (meta.timing.baseline: the evaluation model alone, same settings, right after)
    target_ms_per_token: float | None = None
    verify_passes: float | None = None  # one verification pass in target-alone tokens (1.0 in the ideal)
    predicted_speedup: float | None = None  # the formula with the measured verification and draft costs
    measured_speedup: float | None = None  # speculative tokens/s ÷ target-alone tokens/s


def costs(trace: Trace, summary: dict[str, Any] | None = None) -> Costs:
    """α, the measured cost ratio c and the speedup they imply, from the trace alone."""
    s = summary or summarize(trace)
    meta = trace.get("meta", {})
    gamma = int(meta.get("gamma") or max(len(s["per_position_acceptance"]), 1))
    alpha = None if s["alpha"] is None else float(s["alpha"])
    timed = [st for st in trace["steps"] if st.get("timing_ms")]
    drafted = sum(len(st["draft"]) for st in timed)
    draft_ms = sum(st["timing_ms"].get("draft", 0.0) for st in timed)
    verify_ms = sum(st["timing_ms"].get("verify", 0.0) for st in timed)
    per_tok = draft_ms / drafted if drafted else None
    per_pass = verify_ms / len(timed) if timed and verify_ms > 0 else None
    c = per_tok / per_pass if per_tok is not None and per_pass else None
    speedup = implied_speedup(alpha, gamma, c) if c is not None and alpha is not None else None
    best_gamma = best = None
    if c is not None and alpha is not None:
        best_gamma, best = max(((g, implied_speedup(alpha, g, c)) for g in range(1, 17)), key=lambda t: t[1])
    measured = _measured(meta.get("timing"), len((trace.get("output") or {}).get("token_ids", [])))
    target_ms = measured[0]
    verify_passes = per_pass / target_ms if per_pass and target_ms else None
    predicted = None
    if verify_passes and per_tok is not None and alpha is not None and target_ms:
        predicted = expected_tokens(alpha, gamma) / (gamma * per_tok / target_ms + verify_passes)
    return Costs(
        alpha=alpha,
        gamma=gamma,
        steps=int(s["steps"]),
        tokens_per_step=_tokens_per_step(trace, s),
        expected_tokens_per_step=None if alpha is None else expected_tokens(alpha, gamma),
        draft_ms_per_token=per_tok,
        verify_ms_per_step=per_pass,
        c=c,
        speedup=speedup,
        best_gamma=best_gamma,
        best_speedup=best,
        draft_kind=str(meta.get("draft", {}).get("kind", "model")),
        target_ms_per_token=target_ms,
        verify_passes=verify_passes,
        predicted_speedup=predicted,
        measured_speedup=measured[1],
    )


def _measured(timing: object, tokens: int) -> tuple[float | None, float | None]:
    """(target-alone ms per token, measured speedup) from meta.timing, where the run measured them."""
    if not isinstance(timing, dict) or not isinstance(timing.get("baseline"), dict):
        return None, None
    base = timing["baseline"]
    b_tokens, b_ms, wall = base.get("tokens"), base.get("wall_ms"), timing.get("wall_ms")
    if not all(isinstance(x, int | float) and x > 0 for x in (b_tokens, b_ms)):
        return None, None
    target_ms = float(b_ms) / float(b_tokens)
    if not (isinstance(wall, int | float) and wall > 0 and tokens):
        return target_ms, None
    return target_ms, (tokens / float(wall)) / (float(b_tokens) / float(b_ms))


def _tokens_per_step(trace: Trace, summary: dict[str, Any]) -> float:
    """Output tokens per step; where a minimal trace omits the model's own tokens, they still count (one a step)."""
    steps = trace["steps"]
    if not steps or all("next" in s for s in steps):
        return float(summary["tokens_per_step"])
    made = sum(s["n_accepted"] + (0 if "next" in s and s["next"] is None else 1) for s in steps)
    return made / len(steps)


def verdict(k: Costs) -> list[str]:
    """The bottleneck in plain words, most important first."""
    if k.steps == 0:
        return ["The trace has no steps, so there is nothing to judge."]
    if k.alpha is None:
        return [
            "Nothing was drafted, so there is no acceptance to judge: every token came from the evaluation model "
            "alone. With prompt lookup this means the text never repeated the prompt; a draft model always drafts."
        ]
    out = []
    if k.alpha < 0.5:
        out.append(
            f"Low acceptance: only α = {k.alpha:.2f} of the draft's decisions pass, so a step yields "
            f"{k.tokens_per_step:.2f} tokens on average. A draft closer to the evaluation model, a lower "
            "temperature, or a shorter gamma would waste less work."
        )
    if k.c is not None and k.c > 0.3:
        out.append(
            f"The draft is slow: one draft token costs c = {k.c:.2f} of a verification pass. Speculation only pays "
            "when drafting is much cheaper than the evaluation model (c well below 0.1 in the papers)."
        )
    if k.best_gamma is not None and k.speedup is not None and k.best_speedup is not None:
        if k.best_gamma < k.gamma and k.best_speedup > 1.05 * k.speedup:
            out.append(
                f"Gamma is too long: with α = {k.alpha:.2f} and c = {k.c:.2f}, gamma = {k.best_gamma} would give "
                f"an ideal {k.best_speedup:.2f}× instead of {k.speedup:.2f}× (by the formula) — late drafts are rarely "
                "reached."
            )
        elif k.best_gamma > k.gamma and k.best_speedup > 1.05 * k.speedup:
            out.append(
                f"Gamma could be longer: drafts are cheap and usually accepted; gamma = {k.best_gamma} would give "
                f"an ideal {k.best_speedup:.2f}× instead of {k.speedup:.2f}× (by the formula)."
            )
        if k.measured_speedup is not None:
            out.append(
                f"Measured: {k.measured_speedup:.2f}× the evaluation model alone (ideal by the formula: "
                f"{k.speedup:.2f}×)."
                + (
                    f" One verification pass cost {k.verify_passes:.2f} target-alone tokens, not the 1.0 the ideal "
                    "assumes."
                    if k.verify_passes is not None and k.verify_passes > 1.1
                    else ""
                )
            )
        elif k.speedup < 1.0:
            out.append(
                f"Net effect: the ideal speedup (verification costing one target pass) is {k.speedup:.2f}× — slower "
                "than running the evaluation model alone even before any overhead."
            )
    if not out:
        sp = f" and an ideal speedup of {k.speedup:.2f}× (by the formula)" if k.speedup is not None else ""
        out.append(
            f"Healthy: α = {k.alpha:.2f} gives {k.tokens_per_step:.2f} tokens per verification pass{sp}; "
            "no single bottleneck stands out."
        )
    return out


def per_position_figure(summary: dict[str, Any], measure: str = "accepted when evaluated") -> go.Figure:
    """Acceptance by draft position (and α as a line where it is defined); `measure` names the
    y axis: a trace counts the steps that reached the position, an engine's counters every draft."""
    rates = summary["per_position_acceptance"]
    xs = list(range(1, len(rates) + 1))
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=[r if r is not None else 0.0 for r in rates],
            marker=dict(color=COLORS["accepted"]),
            text=["not reached" if r is None else f"{r:.0%}" for r in rates],
            textposition="outside",
            hovertemplate=f"draft position %{{x}}: %{{y:.1%}} ({measure})<extra></extra>",
            name="acceptance rate",
        )
    )
    if summary.get("alpha") is not None:  # undefined without drafts; a run summary may not give it
        fig.add_trace(
            go.Scatter(
                x=[0.5, len(rates) + 0.5],
                y=[summary["alpha"]] * 2,
                mode="lines",
                name=f"α = {summary['alpha']:.2f} over all positions",
                line=dict(dash="dash", color="black"),
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
        dragmode=False,
        legend=dict(orientation="h", y=1.12),
    )
    fig.update_xaxes(title="draft position", tickvals=xs, fixedrange=True)
    fig.update_yaxes(title=measure, range=[0, 1.15], tickformat=".0%", fixedrange=True)
    return fig


def accepted_lengths_figure(summary: dict[str, Any], gamma: int) -> go.Figure:
    counts = summary["accepted_length_counts"]
    xs = list(range(len(counts)))
    a, total = summary.get("alpha"), sum(counts)
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=counts,
            name="steps",
            marker=dict(color=COLORS["accepted"]),
            hovertemplate="n_accepted = %{x}: %{y} steps<extra></extra>",
        )
    )
    if a is not None:  # undefined without drafts; a run summary may not give it
        # if every decision passed with probability α independently: P(n) = α^n (1 − α), and α^γ for n = γ
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[total * (a**n * (1 - a) if n < gamma else a**gamma) for n in xs],
                name="expected with independent α",
                mode="markers+lines",
                marker=dict(symbol="line-ew", size=24, line=dict(width=3, color="black")),
                line=dict(dash="dot", color="black"),
                hovertemplate="expected: %{y:.1f}<extra></extra>",
            )
        )
    fig.update_layout(
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
        legend=dict(orientation="h", y=1.12),
        dragmode=False,
    )
    fig.update_xaxes(title="n_accepted (drafts accepted in a step)", tickvals=xs, fixedrange=True)
    fig.update_yaxes(title="steps", fixedrange=True)
    return fig


def tokens_per_step_figure(k: Costs) -> go.Figure:
    """The theory curve (1 − α^(γ+1))/(1 − α) over α, this trace's α and measured tokens per step on it."""
    alphas = [i / 100 for i in range(0, 100)] + [0.999]
    fig = go.Figure()
    for g in sorted({1, 2, 4, 8, k.gamma}):
        mine = g == k.gamma
        fig.add_trace(
            go.Scatter(
                x=alphas,
                y=[expected_tokens(a, g) for a in alphas],
                mode="lines",
                name=f"theory, γ = {g}",
                line=dict(color="black" if mine else "#BBBBBB", width=3 if mine else 1.5),
                hovertemplate=f"γ = {g}, α = %{{x:.2f}}: %{{y:.2f}} tokens/step<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=[] if k.alpha is None else [k.alpha],  # no α: the run drafted nothing, so no point on the curve
            y=[] if k.alpha is None else [k.tokens_per_step],
            mode="markers",
            name="this trace (measured)",
            marker=dict(color=COLORS["bonus"], symbol="star", size=18, line=dict(width=1, color="black")),
            hovertemplate="measured: α = %{x:.2f}, %{y:.2f} tokens/step<extra></extra>",
        )
    )
    fig.update_layout(
        height=340, margin=dict(l=10, r=10, t=30, b=10), plot_bgcolor="white", legend=dict(x=0.01, y=0.99)
    )
    fig.update_xaxes(title="α (acceptance probability)", range=[0, 1], gridcolor="#EEEEEE")
    fig.update_yaxes(title="tokens per step", gridcolor="#EEEEEE")
    return fig


def timing_figure(trace: Trace) -> go.Figure:
    steps = trace["steps"]
    xs = [s["index"] for s in steps]
    draft = [(s.get("timing_ms") or {}).get("draft", 0.0) for s in steps]
    verify = [(s.get("timing_ms") or {}).get("verify", 0.0) for s in steps]
    fig = go.Figure(
        [
            go.Bar(
                x=xs,
                y=draft,
                name="draft",
                marker=dict(color=Q_COLOR, pattern=dict(shape="/", fillmode="overlay", fgcolor="white")),
                hovertemplate="step %{x}: draft %{y:.1f} ms<extra></extra>",
            ),
            go.Bar(
                x=xs,
                y=verify,
                name="verify (one evaluation-model pass)",
                marker=dict(color=P_COLOR),
                hovertemplate="step %{x}: verify %{y:.1f} ms<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        barmode="stack",
        bargap=0.1 if len(xs) < 100 else 0,
        height=320,
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
        legend=dict(orientation="h", y=1.12),
    )
    fig.update_xaxes(title="step")
    fig.update_yaxes(title="milliseconds", gridcolor="#EEEEEE")
    return fig
