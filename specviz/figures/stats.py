"""Statistics: the verdict in words, the charts of acceptance, tokens per step and time.

The numbers all come from the cost model, specviz.core.theory (`theory.measure`: α, γ, c, the
speedups; `theory.findings`: the diagnosis); this module only words and draws them, so the
Statistics page, the exercises and the Speedup lab read the same numbers for a trace. The
Statistics page draws them for a trace; `per_position_figure` and `accepted_lengths_figure` also
draw a serving engine's counters (specviz.ui.engine, on Statistics and Compare).
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from specviz.core import theory
from specviz.figures.palette import BASELINE_LINE, COLORS, MEASURED_MARKER, NEUTRAL, P_COLOR, Q_COLOR, SERIES
from specviz.trace import Trace

__all__ = [
    "FEW_TRIALS",
    "accepted_lengths_figure",
    "break_even_figure",
    "finding_words",
    "pass_cost_figure",
    "per_position_figure",
    "position_counts",
    "tau_figure",
    "timing_figure",
    "tokens_per_step_figure",
    "verdict",
    "wilson",
]


def finding_words(f: theory.Finding, k: theory.Measured) -> str:
    """One finding of theory.findings in plain words, with this trace's numbers (theory.measure)."""
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
            f"when drafting is much cheaper than the evaluation model (c well below {theory.PAPERS_C} in the papers)."
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


def verdict(k: theory.Measured) -> list[str]:
    """The bottleneck in plain words, most important first: theory.findings in words, then the
    measured speedup (or a warning when even the ideal is below 1×). k: theory.measure(trace)."""
    if k.steps == 0:
        return ["The trace has no steps, so there is nothing to judge."]
    if k.alpha is None:
        return [
            "Nothing was drafted, so there is no acceptance to judge: every token came from the evaluation model "
            "alone. With prompt lookup this means the text never repeated the prompt; a draft model always drafts."
        ]
    out = [finding_words(f, k) for f in theory.findings(k.alpha, k.gamma, k.c)]
    if k.ideal_speedup is not None and k.measured_speedup is not None:
        out.append(
            f"Measured: {k.measured_speedup:.2f}× the evaluation model alone, against {k.ideal_speedup:.2f}× "
            f"{theory.IDEAL_WORDS}."
            + (
                f" One verification pass cost {k.verify_passes:.2f} target-alone tokens, not the 1.0 the ideal assumes."
                if k.verify_passes is not None and k.verify_passes > theory.WIDE_PASS
                else ""
            )
        )
    elif k.ideal_speedup is not None and k.ideal_speedup < 1.0:
        out.append(
            f"Net effect: {k.ideal_speedup:.2f}× {theory.IDEAL_WORDS} — slower than running the evaluation model alone "
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
            # said under each bar, with its position (below): over a bar the α line and the interval ran through it
            textposition="none",
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
    fig.update_xaxes(
        title="draft position",
        tickvals=xs,
        ticktext=[f"{x}<br>{t}" for x, t in zip(xs, text, strict=True)],
        fixedrange=True,
    )
    # room above 100% for the intervals' whiskers, but no tick past it: a rate never exceeds 100%
    fig.update_yaxes(title=measure, range=[0, 1.1], tickvals=[0, 0.25, 0.5, 0.75, 1], tickformat=".0%", fixedrange=True)
    return fig


def accepted_lengths_figure(summary: dict[str, Any], gamma: int) -> go.Figure:
    """Steps by drafts accepted, and the counts theory.accepted_length_probabilities expects with α."""
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
        p = theory.accepted_length_probabilities(float(a), gamma)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[total * p[min(n, gamma)] for n in xs],
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


def tokens_per_step_figure(k: theory.Measured) -> go.Figure:
    """The theory curve (1 − α^(γ+1))/(1 − α) over α, this trace's α and measured tokens per step on it."""
    alphas = [i / 100 for i in range(0, 100)] + [0.999]
    fig = go.Figure()
    for g in sorted({1, 2, 4, 8, k.gamma}):
        mine = g == k.gamma
        fig.add_trace(
            go.Scatter(
                x=alphas,
                y=[theory.expected_tokens(a, g) for a in alphas],
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
