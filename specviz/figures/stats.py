"""Statistics: the cost model (α, the cost ratio c, the speedup they imply), the verdict, the charts.

The Statistics page draws them for a trace; `per_position_figure` and `accepted_lengths_figure`
also draw a serving engine's counters (specviz.ui.engine, on Statistics and Compare).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from specviz.core import theory
from specviz.figures.palette import BASELINE_LINE, COLORS, MEASURED_MARKER, NEUTRAL, P_COLOR, Q_COLOR, SERIES
from specviz.trace import Trace, summarize

__all__ = [
    "Costs",
    "accepted_lengths_figure",
    "break_even_figure",
    "costs",
    "expected_tokens",
    "finding_words",
    "implied_speedup",
    "pass_cost_figure",
    "per_position_figure",
    "position_counts",
    "tau_figure",
    "timing_figure",
    "tokens_per_step_figure",
    "verdict",
    "wilson",
]


# the formulas have one home, specviz.core.theory; these names stay for `fg.expected_tokens` callers
expected_tokens = theory.expected_tokens
implied_speedup = theory.speedup


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
        best_gamma, best = theory.best_gamma(alpha, c)
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


def finding_words(f: theory.Finding, k: Costs) -> str:
    """One finding of theory.findings in plain words, with this trace's numbers."""
    a, c = k.alpha or 0.0, k.c
    ideal = theory.IDEAL_WORDS
    if f.kind == "low_acceptance":
        return (
            f"Low acceptance: only α = {a:.2f} of the draft's decisions pass, so a step yields "
            f"{k.tokens_per_step:.2f} tokens on average. Nothing else helps much until the draft agrees more often "
            "with the evaluation model (a closer draft, or a temperature the two share)."
        )
    if f.kind == "slow_draft":
        return (
            f"The draft is slow: one draft token costs c = {c:.2f} of a verification pass. Speculation only pays "
            "when drafting is much cheaper than the evaluation model (c well below 0.1 in the papers)."
        )
    if f.kind in ("gamma_too_long", "gamma_too_short"):
        assert f.speedup is not None and f.best_speedup is not None
        why = (
            "late drafts are rarely reached" if f.kind == "gamma_too_long" else "drafts are cheap and usually accepted"
        )
        return (
            f"Gamma is too {'long' if f.kind == 'gamma_too_long' else 'short'}: with α = {a:.2f} and c = {c:.3f}, "
            f"gamma = {f.best_gamma} would give {f.best_speedup:.2f}× instead of {f.speedup:.2f}×, both {ideal} — "
            f"{why}."
        )
    sp = f" and {f.speedup:.2f}× {ideal}" if f.speedup is not None else ""
    return (
        f"Healthy: α = {a:.2f} gives {k.tokens_per_step:.2f} tokens per verification pass{sp}; no single bottleneck "
        "stands out."
    )


def verdict(k: Costs) -> list[str]:
    """The bottleneck in plain words, most important first: theory.findings in words, then the
    measured speedup (or a warning when even the ideal is below 1×)."""
    if k.steps == 0:
        return ["The trace has no steps, so there is nothing to judge."]
    if k.alpha is None:
        return [
            "Nothing was drafted, so there is no acceptance to judge: every token came from the evaluation model "
            "alone. With prompt lookup this means the text never repeated the prompt; a draft model always drafts."
        ]
    out = [finding_words(f, k) for f in theory.findings(k.alpha, k.gamma, k.c)]
    if k.speedup is not None and k.measured_speedup is not None:
        out.append(
            f"Measured: {k.measured_speedup:.2f}× the evaluation model alone, against {k.speedup:.2f}× "
            f"{theory.IDEAL_WORDS}."
            + (
                f" One verification pass cost {k.verify_passes:.2f} target-alone tokens, not the 1.0 the ideal assumes."
                if k.verify_passes is not None and k.verify_passes > 1.1
                else ""
            )
        )
    elif k.speedup is not None and k.speedup < 1.0:
        out.append(
            f"Net effect: {k.speedup:.2f}× {theory.IDEAL_WORDS} — slower than running the evaluation model alone "
            "even before any overhead."
        )
    return out


def position_counts(trace: Trace) -> list[tuple[int, int]]:
    """(accepted, tested) per draft position, counted as summarize's per_position_acceptance is:
    the decisions made at that position, none after an accepted end-of-sequence draft."""
    eos = set(trace.get("meta", {}).get("eos_token_ids") or [])
    steps = trace["steps"]
    gamma = max((len(st["draft"]) for st in steps), default=0)
    out = [[0, 0] for _ in range(gamma)]
    for st in steps:
        counted = next(
            (j + 1 for j, d in enumerate(st["draft"][: st["n_accepted"]]) if d["token_id"] in eos), len(st["draft"])
        )
        for j, v in enumerate(st["verify"][: min(len(st["verify"]), counted)]):
            if v["accepted"] is not None:
                out[j][0] += bool(v["accepted"])
                out[j][1] += 1
    return [(a, n) for a, n in out]


def wilson(accepted: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% at z = 1.96) for a rate of accepted / n; (0, 1) when n = 0.

    Unlike p ± z·√(p(1 − p)/n) it stays inside [0, 1] and is honest for 2 of 3 (Wilson 1927)."""
    if n <= 0:
        return 0.0, 1.0
    p = accepted / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


FEW_TRIALS = 10  # bars with fewer tested drafts than this are faded: their rate is mostly noise


def per_position_figure(
    summary: dict[str, Any], measure: str = "accepted when evaluated", counts: list[tuple[int, int]] | None = None
) -> go.Figure:
    """Acceptance by draft position (and α as a line where it is defined); `measure` names the
    y axis: a trace counts the steps that reached the position, an engine's counters every draft.

    counts: (accepted, tested) per position (position_counts); with them each bar says "67% (2/3)",
    carries a 95% Wilson interval as error bars, and is faded when fewer than FEW_TRIALS were tested."""
    rates = summary["per_position_acceptance"]
    xs = list(range(1, len(rates) + 1))
    ys = [r if r is not None else 0.0 for r in rates]
    text = ["not reached" if r is None else f"{r:.0%}" for r in rates]
    bar: dict[str, Any] = dict(hovertemplate=f"draft position %{{x}}: %{{y:.1%}} ({measure})<extra></extra>")
    if counts is not None and len(counts) == len(rates):
        text = [
            "not reached" if r is None or n == 0 else f"{r:.0%} ({a}/{n})"
            for r, (a, n) in zip(rates, counts, strict=True)
        ]
        # a position never reached has no interval to draw (wilson(0, 0) is the whole 0–100% range)
        bounds = [wilson(a, n) if n else (y, y) for (a, n), y in zip(counts, ys, strict=True)]
        bar = dict(
            error_y=dict(
                type="data",
                symmetric=False,
                array=[max(0.0, hi - y) for y, (_, hi) in zip(ys, bounds, strict=True)],
                arrayminus=[max(0.0, y - lo) for y, (lo, _) in zip(ys, bounds, strict=True)],
                color="#555555",
                thickness=1.5,
            ),
            customdata=[[a, n, lo, hi] for (a, n), (lo, hi) in zip(counts, bounds, strict=True)],
            hovertemplate=f"draft position %{{x}}: %{{y:.1%}} ({measure}), %{{customdata[0]}} of "
            "%{customdata[1]} tested; 95% Wilson interval %{customdata[2]:.0%}–%{customdata[3]:.0%}<extra></extra>",
        )
        opacity = [0.35 if n < FEW_TRIALS else 1.0 for _, n in counts]
    else:
        opacity = [1.0] * len(rates)
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=ys,
            marker=dict(color=COLORS["accepted"], opacity=opacity),
            text=text,
            textposition="outside",
            name="acceptance rate"
            + (f" (faded: fewer than {FEW_TRIALS} tested)" if min(opacity, default=1) < 1 else ""),
            **bar,
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
    fig.update_yaxes(title=measure, range=[0, 1.2], tickformat=".0%", fixedrange=True)
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
            # a diamond, not the palette's star: ★ means a bonus token everywhere in the app
            marker=dict(**MEASURED_MARKER, line=dict(width=1.5, color="white")),
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


# ---------------------------------------------------------------- the scenario exercises' figures


def _small(fig: go.Figure, x: str, y: str) -> go.Figure:
    fig.update_layout(
        height=300,
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
        dragmode=False,
        legend=dict(orientation="h", y=1.15),
    )
    fig.update_xaxes(title=x, gridcolor="#EEEEEE", fixedrange=True)
    fig.update_yaxes(title=y, gridcolor="#EEEEEE", fixedrange=True)
    return fig


def tau_figure(taus: list[float], alphas: list[float], speedups: list[float], goal: float) -> go.Figure:
    """The threshold rule's ideal speedup for each τ (α(τ) estimated from a trace's logged p/q), and the goal."""
    fig = go.Figure(
        go.Bar(
            x=taus,
            y=speedups,
            customdata=alphas,
            marker=dict(color=[SERIES[0] if sp >= goal else NEUTRAL for sp in speedups]),
            name="speedup, ideal (formula)",  # the assumption is in the caption: a legend entry that long is cut
            hovertemplate="τ = %{x}: α ≈ %{customdata:.2f}, %{y:.2f}×<extra></extra>",
        )
    )
    fig.add_hline(y=goal, line=dict(dash="dash", color="black"), annotation_text=f"goal {goal:.2f}×")
    fig.update_xaxes(tickvals=taus)
    return _small(fig, "τ (the threshold rule accepts a draft when p/q ≥ τ)", "ideal speedup")


def break_even_figure(c: float, gamma: int, windows: list[float]) -> go.Figure:
    """Ideal speedup over α at γ = 1 and at this γ for a cost ratio c, the 1× line, and measured windows' α."""
    alphas = [i / 100 for i in range(100)]
    fig = go.Figure()
    for g in sorted({1, gamma}):
        fig.add_trace(
            go.Scatter(
                x=alphas,
                y=[theory.speedup(a, g, c) for a in alphas],
                mode="lines",
                name=f"γ = {g}",
                line=dict(color="black" if g == gamma else "#888888", dash="solid" if g == gamma else "dot"),
                hovertemplate=f"γ = {g}, α = %{{x:.2f}}: %{{y:.2f}}×<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=windows,
            y=[theory.speedup(a, gamma, c) for a in windows],
            mode="markers",
            name="measured windows of this trace",
            marker=dict(**MEASURED_MARKER, line=dict(width=1, color="white")),
            hovertemplate="window α = %{x:.2f}: %{y:.2f}×<extra></extra>",
        )
    )
    fig.add_hline(y=1.0, line=BASELINE_LINE, annotation_text="evaluation model alone")
    return _small(fig, "α (acceptance probability)", "speedup (ideal, by the formula)")


def pass_cost_figure(costs: dict[int, float], positions: int) -> go.Figure:
    """A verification pass's measured cost by positions, in one-token passes; the ideal assumes 1.0."""
    xs = sorted(costs)
    one = costs[xs[0]]
    fig = go.Figure(
        go.Bar(
            x=xs,
            y=[costs[k] / one for k in xs],
            customdata=[costs[k] for k in xs],
            marker=dict(color=[P_COLOR if k == positions else NEUTRAL for k in xs]),
            name="measured pass cost",
            hovertemplate="%{x} positions: %{customdata:.1f} ms = %{y:.2f} one-token passes<extra></extra>",
        )
    )
    fig.add_hline(y=1.0, line=dict(dash="dash", color="black"), annotation_text="what the ideal assumes")
    fig.update_xaxes(type="category")
    return _small(fig, "positions in one pass (γ + 1)", "cost in one-token passes")
