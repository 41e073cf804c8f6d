"""The speedup model of speculative decoding, and measured points to hold against it. Pure Python.

With each draft accepted independently with probability alpha, a step of gamma drafts yields

    E[tokens per step] = (1 - alpha^(gamma+1)) / (1 - alpha)          (between 1 and gamma + 1)

for ONE pass of the evaluation model. A step also costs gamma draft tokens, each c of a
verification pass, so against the evaluation model alone (one token per pass)

    speedup = (1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1)).

Leviathan et al. (2023), "Fast Inference from Transformers via Speculative Decoding", §3.

This module is the one home of the cost model: the formulas, the numbers a trace measures for them
(α, γ, the cost ratio c, the pass costs; `measure`), the diagnosis (`findings`) and its thresholds.
Statistics, Exercises, the Speedup lab, Compare and the Live verdict read them from here; the
figures only draw them, so no two pages can disagree about the same trace.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

from specviz.trace import Step, Trace, summarize

__all__ = [
    "GAMMA_GAIN",
    "GOALS",
    "IDEAL_ASSUMPTION",
    "IDEAL_WORDS",
    "LOW_ALPHA",
    "MAX_GAMMA",
    "PAPERS_C",
    "SLOW_DRAFT_C",
    "WIDE_PASS",
    "BudgetUnit",
    "Diagnosis",
    "Finding",
    "Measured",
    "accepted_length_probabilities",
    "alpha_needed",
    "baseline",
    "best_gamma",
    "break_even_alpha",
    "break_even_alpha_at",
    "budget_yield",
    "cost_ratio",
    "crossover_c",
    "diagnose",
    "expected_tokens",
    "findings",
    "interpolate_cost",
    "measure",
    "needed_text",
    "speedup",
    "speedup_at_costs",
    "step_cost_ms",
    "step_times",
    "timed_steps",
    "tokens_per_step",
    "trace_gamma",
]

BudgetUnit = Literal["passes", "positions", "compute"]
Diagnosis = Literal["low_acceptance", "slow_draft", "gamma_too_long", "gamma_too_short", "healthy"]
MAX_GAMMA = 16  # the largest γ any page recommends or offers (Statistics, exercises, the Speedup lab)
# speedups over the evaluation model alone for which the α a chain would need is reported
GOALS = (1.0, 1.5, 2.0)
# the assumption behind every "ideal" speedup, in the words each page and exercise shows beside it
IDEAL_ASSUMPTION = "a pass over γ+1 positions costs one token's pass"  # what every "ideal" figure assumes
IDEAL_WORDS = f"ideal (formula: {IDEAL_ASSUMPTION})"
# the diagnosis' thresholds (`findings`); every page and exercise that quotes one reads it from here
LOW_ALPHA = 0.5  # below it most steps end at the first or second draft
SLOW_DRAFT_C = 0.3  # above it drafting eats most of the gain
PAPERS_C = 0.1  # the papers' drafts cost well below this share of a pass (what the slow-draft words quote)
GAMMA_GAIN = 1.05  # a γ change that gains less than 5% is not worth naming
WIDE_PASS = 1.1  # a verification pass dearer than this many one-token passes is named as a cost of its own


def _check(alpha: float, gamma: int) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")


def expected_tokens(alpha: float, gamma: int) -> float:
    """(1 − α^(γ+1)) / (1 − α): tokens one verification pass yields on average; γ + 1 at α = 1.

    Leviathan et al. (2023), §3, eq. 1."""
    _check(alpha, gamma)
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def speedup(alpha: float, gamma: int, c: float) -> float:
    """(1 − α^(γ+1)) / ((1 − α)(γc + 1)): the expected speedup over the evaluation model alone, ideal:
    a verification pass over γ + 1 positions costs one token's pass (IDEAL_ASSUMPTION).

    Leviathan et al. (2023), §3, Theorem 3.8: `speedup_at_costs` with draft_cost c and verify_cost 1."""
    if c < 0:
        raise ValueError(f"the cost ratio c must be >= 0, got {c}")
    return speedup_at_costs(alpha, gamma, c, 1.0)


def speedup_at_costs(alpha: float, gamma: int, draft_cost: float, verify_cost: float) -> float:
    """E[tokens per step] / (γ · draft_cost + verify_cost): the speedup over the evaluation model alone
    with both costs in units of one token of the evaluation model alone (a one-token pass).

    draft_cost: one draft token; verify_cost: one verification pass over γ + 1 positions (1.0 in the
    ideal, more where a wide pass costs more; `PassCosts` and the Statistics page measure it). The
    step's cost γc + 1 of Leviathan et al. (2023), §3, with the pass's measured cost in place of 1.
    """
    if draft_cost < 0 or verify_cost <= 0:
        raise ValueError(f"costs must be draft >= 0 and verify > 0, got {draft_cost} and {verify_cost}")
    return expected_tokens(alpha, gamma) / (gamma * draft_cost + verify_cost)


def accepted_length_probabilities(alpha: float, gamma: int) -> list[float]:
    """P(n drafts accepted) for n = 0..γ if each decision passes independently with probability α:
    α^n (1 − α) for n < γ and α^γ for n = γ (a truncated geometric; they sum to 1).

    The distribution behind E[tokens per step] = Σ (n + 1) P(n) (Leviathan et al. 2023, §3)."""
    _check(alpha, gamma)
    return [alpha**n * (1.0 - alpha) for n in range(gamma)] + [alpha**gamma]


def best_gamma(alpha: float, c: float, max_gamma: int = MAX_GAMMA) -> tuple[int, float]:
    """The γ in 1..max_gamma with the highest expected speedup (the smallest such γ on ties)."""
    return max(((g, speedup(alpha, g, c)) for g in range(1, max_gamma + 1)), key=lambda t: (t[1], -t[0]))


def budget_yield(alpha: float, gamma: int, budget: float, unit: BudgetUnit = "passes", c: float = 0.0) -> float:
    """Expected tokens from a fixed verification budget.

    unit "passes": the budget counts forward passes of the evaluation model, each checking a whole
    step, so every pass yields E[tokens per step]: longer drafts always help, less and less.
    unit "positions": it counts positions the evaluation model scores — a pass over γ drafts scores
    γ + 1 — as when verification compute is the bottleneck of a busy server; long drafts spend budget
    on positions that are rarely reached.
    unit "compute": it counts the time of evaluation passes, and a step also pays γ·c of a pass for
    drafting, so budget × speedup(α, γ, c) tokens.
    """
    per_step = expected_tokens(alpha, gamma)
    if unit == "passes":
        return budget * per_step
    if unit == "positions":
        return (budget // (gamma + 1)) * per_step
    return budget / (1.0 + gamma * c) * per_step


# ------------------------------------------- what a trace measures for the model


def trace_gamma(trace: Trace) -> int:
    """γ of a trace: meta.gamma, the most drafts a step may have (prompt lookup and adaptive policies
    may draft fewer). The one fallback, for a trace without it (a minimal or converted one): the
    longest draft it shows, and 1 when nothing was drafted."""
    gamma = trace.get("meta", {}).get("gamma")
    if isinstance(gamma, int) and gamma > 0:
        return gamma
    return max((len(st["draft"]) for st in trace["steps"]), default=1) or 1


def timed_steps(trace: Trace) -> list[Step]:
    """The steps the costs (c, the pass cost) are measured over: those with timings — an untimed step
    would count drafts or a pass without their time — less step 0 where a later step is timed too.
    Step 0's draft time includes the draft model reading the whole prompt (its prefill), a one-off
    that the steady-state cost of a step must not carry."""
    timed = [st for st in trace["steps"] if st.get("timing_ms")]
    return timed[1:] if len(timed) > 1 and timed[0].get("index", 0) == 0 else timed


def step_times(trace: Trace) -> tuple[float | None, float | None]:
    """(draft ms per draft token, verify ms per verification pass) over `timed_steps`, each None
    where nothing was drafted (timed) or no verification time was recorded."""
    timed = timed_steps(trace)
    drafted = sum(len(st["draft"]) for st in timed)
    draft_ms = sum(float(st["timing_ms"].get("draft", 0.0)) for st in timed)
    verify_ms = sum(float(st["timing_ms"].get("verify", 0.0)) for st in timed)
    per_token = draft_ms / drafted if drafted else None
    per_pass = verify_ms / len(timed) if timed and verify_ms > 0 else None
    return per_token, per_pass


def cost_ratio(trace: Trace) -> float | None:
    """c = draft ms per draft token ÷ verify ms per verification pass (`step_times`): the share of a
    pass one draft token costs (Leviathan et al. 2023, §3); None without both."""
    per_token, per_pass = step_times(trace)
    return per_token / per_pass if per_token is not None and per_pass else None


def baseline(trace: Trace) -> tuple[float | None, float | None]:
    """(target-alone ms per token, measured speedup) from meta.timing, where the run timed the
    evaluation model alone beside it (same settings, right after); measured speedup = speculative
    tokens/s ÷ target-alone tokens/s."""
    timing = trace.get("meta", {}).get("timing")
    if not isinstance(timing, dict) or not isinstance(timing.get("baseline"), dict):
        return None, None
    base = timing["baseline"]
    b_tokens, b_ms, wall = base.get("tokens"), base.get("wall_ms"), timing.get("wall_ms")
    if not all(isinstance(x, int | float) and x > 0 for x in (b_tokens, b_ms)):
        return None, None
    target_ms = float(b_ms) / float(b_tokens)
    tokens = len((trace.get("output") or {}).get("token_ids", []))
    if not (isinstance(wall, int | float) and wall > 0 and tokens):
        return target_ms, None
    return target_ms, (tokens / float(wall)) / (float(b_tokens) / float(b_ms))


def tokens_per_step(trace: Trace, summary: dict[str, Any] | None = None) -> float:
    """Output tokens per step (per verification pass); where a minimal trace omits the evaluation
    model's own tokens ("next"), they still count, one a step."""
    steps = trace["steps"]
    if not steps or all("next" in s for s in steps):
        return float((summary or summarize(trace))["tokens_per_step"])
    made = sum(s["n_accepted"] + (0 if "next" in s and s["next"] is None else 1) for s in steps)
    return made / len(steps)


@dataclass(frozen=True)
class Measured:
    """One trace as a point to compare with the model: what it measured and what the model predicts
    from that. The one record Statistics, Exercises, the Speedup lab, Compare and the Live verdict read."""

    name: str
    steps: int
    gamma: int  # trace_gamma: meta.gamma, the most drafts a step may have
    mean_drafts: float  # drafts per step actually proposed (prompt lookup and adaptive policies draft fewer)
    alpha: float | None  # summarize's α; None: nothing drafted, so no acceptance to measure
    tokens_per_step: float
    expected_tokens_per_step: float | None  # expected_tokens(alpha, gamma)
    draft_ms_per_token: float | None  # step_times, over timed_steps
    verify_ms_per_pass: float | None
    c: float | None  # cost_ratio: draft ms per draft token ÷ verify ms per pass, when the trace is timed
    ideal_speedup: float | None  # speedup(alpha, gamma, c)
    best_gamma: int | None  # the γ with the highest ideal speedup for this α and c
    best_speedup: float | None
    # measured beside the run (meta.timing.baseline: the evaluation model alone, same settings, right after)
    target_ms_per_token: float | None
    verify_passes: float | None  # one verification pass in target-alone tokens (1.0 in the ideal)
    speedup_at_measured_costs: float | None  # speedup_at_costs with the measured draft and verify costs
    measured_speedup: float | None  # speculative tokens/s ÷ target-alone tokens/s
    tokens_per_second: float | None  # tokens / (draft + verify time): the decoding speed the trace shows
    ms_per_token: float | None
    lossless: bool
    draft_kind: str
    # positions one verification pass scored, per step: drafts + 1 for a chain, a tree's nodes + 1 (the root)
    positions_per_pass: float = 0.0
    tree: bool = False  # the steps drafted trees: the formula is a chain's, with γ the tree's depth


def measure(trace: Trace, name: str = "", summary: dict[str, Any] | None = None) -> Measured:
    """α, γ, c, the speeds and what the model predicts from them, for a (valid) trace.

    α and what it predicts are None for a trace that drafted nothing (undefined, not 0); c and the
    speedups are None for an untimed one.
    """
    s = summary or summarize(trace)
    meta = trace.get("meta", {})
    steps = trace["steps"]
    gamma = trace_gamma(trace)
    alpha = None if s["alpha"] is None else float(s["alpha"])
    per_token, per_pass = step_times(trace)
    c = cost_ratio(trace)
    g_best = s_best = None
    if c is not None and alpha is not None:
        g_best, s_best = best_gamma(alpha, c)
    target_ms, measured = baseline(trace)
    passes = per_pass / target_ms if per_pass and target_ms else None
    at_costs = None
    if passes is not None and per_token is not None and alpha is not None and target_ms:
        at_costs = speedup_at_costs(alpha, gamma, per_token / target_ms, passes)
    # the whole run's time (step 0 included): what decoding these tokens took
    total_ms = sum(
        float((st.get("timing_ms") or {}).get("draft", 0.0)) + float((st.get("timing_ms") or {}).get("verify", 0.0))
        for st in steps
    )
    tokens = int(s["tokens"])
    return Measured(
        name=name or str(meta.get("sample", {}).get("name") or "trace"),
        steps=len(steps),
        gamma=gamma,
        mean_drafts=sum(len(st["draft"]) for st in steps) / len(steps) if steps else 0.0,
        alpha=alpha,
        tokens_per_step=tokens_per_step(trace, s),
        expected_tokens_per_step=None if alpha is None else expected_tokens(alpha, gamma),
        draft_ms_per_token=per_token,
        verify_ms_per_pass=per_pass,
        c=c,
        ideal_speedup=speedup(alpha, gamma, c) if c is not None and alpha is not None else None,
        best_gamma=g_best,
        best_speedup=s_best,
        target_ms_per_token=target_ms,
        verify_passes=passes,
        speedup_at_measured_costs=at_costs,
        measured_speedup=measured,
        tokens_per_second=tokens / (total_ms / 1e3) if total_ms > 0 and tokens else None,
        ms_per_token=total_ms / tokens if total_ms > 0 and tokens else None,
        lossless=bool(meta.get("rule", {}).get("lossless", True)),
        draft_kind=str(meta.get("draft", {}).get("kind", "model")),
        positions_per_pass=sum(len((st.get("tree") or {}).get("nodes") or st["draft"]) + 1 for st in steps) / len(steps)
        if steps
        else 0.0,
        tree=any(st.get("tree") for st in steps),
    )


# ------------------------------------------- the diagnosis


@dataclass(frozen=True)
class Finding:
    """One thing that holds the speedup back, with the numbers that show it."""

    kind: Diagnosis
    speedup: float | None  # the ideal speedup now (None: untimed, so no c)
    best_gamma: int | None  # the γ with the highest ideal speedup for this α and c
    best_speedup: float | None


def findings(alpha: float, gamma: int, c: float | None) -> tuple[Finding, ...]:
    """Everything that limits the speedup by the model above, most important first; one
    "healthy" finding when nothing does. The one home of the diagnosis: the Statistics verdict and
    the bottleneck exercise both read it, so a question has exactly one defensible answer.

    The order: low acceptance (α < LOW_ALPHA: nothing else helps while most drafts fail), then a
    draft that is too expensive (c > SLOW_DRAFT_C), then a γ whose best alternative gains more than
    GAMMA_GAIN (too long or too short).
    """
    now = best = g_best = None
    if c is not None:
        g_best, best = best_gamma(alpha, c)
        now = speedup(alpha, gamma, c)
    out: list[Diagnosis] = []
    if alpha < LOW_ALPHA:
        out.append("low_acceptance")
    if c is not None and c > SLOW_DRAFT_C:
        out.append("slow_draft")
    if now is not None and best is not None and g_best is not None and best > GAMMA_GAIN * now:
        out.append("gamma_too_long" if g_best < gamma else "gamma_too_short")
    if not out:
        out.append("healthy")
    return tuple(Finding(kind, now, g_best, best) for kind in out)


def diagnose(alpha: float, gamma: int, c: float | None) -> Diagnosis:
    """The one thing that limits the speedup most: the first of `findings`."""
    return findings(alpha, gamma, c)[0].kind


def break_even_alpha(c: float) -> float:
    """The α below which no γ ≥ 1 beats the evaluation model alone: c itself (γ = 1 needs the least).

    speedup ≥ 1 ⇔ α + α² + … + α^γ ≥ γc, and the mean of α^j over j = 1..γ is largest at γ = 1,
    where (1 + α) / (1 + c) ≥ 1 ⇔ α ≥ c. Like `speedup`, it takes the ideal's pass cost.
    """
    return min(max(c, 0.0), 1.0)


def break_even_alpha_at(gamma: int, c: float) -> float:
    """The α at which this γ breaks even (ideal speedup = 1) for a cost ratio c; 1.0 when even α = 1
    does not (c > 1). Bisected: the speedup grows with α at every γ. At γ = 1 it is break_even_alpha(c)."""
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if speedup(mid, gamma, c) < 1.0 else (lo, mid)
    return hi


def crossover_c(alpha: float, gamma: int) -> float:
    """The cost ratio at which speculation stops paying (speedup = 1) for this α and γ."""
    if gamma == 0:
        return math.inf
    return (expected_tokens(alpha, gamma) - 1.0) / gamma


# ------------------------------------------- with a machine's measured costs


def interpolate_cost(costs: dict[int, float], k: int) -> float:
    """Milliseconds for k positions from the measured curve (linear between measured sizes)."""
    ks = sorted(costs)
    if not ks:
        raise ValueError("no measured costs")
    if k <= ks[0] or len(ks) == 1:  # one measured size: flat
        return costs[ks[0]]
    for a, b in itertools.pairwise(ks):
        if k <= b:
            return costs[a] + (costs[b] - costs[a]) * (k - a) / (b - a)
    a, b = ks[-2], ks[-1]
    return costs[b] + (costs[b] - costs[a]) * (k - b) / (b - a)


def step_cost_ms(
    costs: dict[int, float],
    depth: int,
    nodes: int,
    draft_ms_per_level: float,
    overhead_ms: float = 0.0,
    overhead_ms_per_node: float = 0.0,
) -> float:
    """Milliseconds one speculative step costs with a machine's measured costs: a draft pass per
    depth, one target pass over nodes + 1 positions (the root and the drafts, from the cost curve)
    and the bookkeeping (overhead_ms per step + overhead_ms_per_node per node). A chain of gamma
    drafts has depth = nodes = gamma."""
    return draft_ms_per_level * depth + interpolate_cost(costs, nodes + 1) + overhead_ms + overhead_ms_per_node * nodes


def alpha_needed(
    costs: dict[int, float],
    draft_ms_per_level: float,
    overhead_ms: float,
    goal: float,
    max_gamma: int = 8,
    overhead_ms_per_node: float = 0.0,
    alone_ms: float | None = None,
) -> tuple[float, int] | None:
    """The smallest acceptance rate α with which a chain of some gamma <= max_gamma would run `goal`
    times as fast as the evaluation model alone on this machine, and that gamma; None when no α
    (not even 1, a perfect draft) gets there.

    Uses the measured costs instead of the textbook's "verification costs one pass": a step costs
    step_cost_ms(depth = nodes = gamma) and yields (1 − α^(γ+1)) / (1 − α) tokens (Leviathan et
    al. 2023, eq. 1); the evaluation model alone costs `alone_ms` a token where it was timed (its own
    loop, sampling and cache work included, as a step's overhead includes the step's), else one
    1-position pass. costs: ms per pass, by positions."""
    alone = alone_ms or interpolate_cost(costs, 1)

    def best(alpha: float) -> tuple[float, int]:
        return max(
            (
                expected_tokens(alpha, g)
                * alone
                / step_cost_ms(costs, g, g, draft_ms_per_level, overhead_ms, overhead_ms_per_node),
                g,
            )
            for g in range(1, max_gamma + 1)
        )

    if best(1.0)[0] < goal:
        return None
    lo, hi = 0.0, 1.0  # speedup grows with α for every gamma: bisect
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if best(mid)[0] >= goal else (mid, hi)
    return hi, best(hi)[1]


def needed_text(needed: dict[str, dict[str, float] | None]) -> str:
    """meta.tree.auto.alpha_needed in words: "a chain needs α ≥ 0.70 (γ 6) to break even, …"."""
    parts = []
    for goal, need in needed.items():
        aim = "to break even" if float(goal) == 1.0 else f"for {goal}×"
        parts.append(
            f"no α is enough {aim}" if need is None else f"α ≥ {need['alpha']:.2f} (γ {int(need['gamma'])}) {aim}"
        )
    return "with these measured costs a chain needs " + ", ".join(parts)
