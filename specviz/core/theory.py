"""The speedup model of speculative decoding, and measured points to hold against it. Pure Python.

With each draft accepted independently with probability alpha, a step of gamma drafts yields

    E[tokens per step] = (1 - alpha^(gamma+1)) / (1 - alpha)          (between 1 and gamma + 1)

for ONE pass of the evaluation model. A step also costs gamma draft tokens, each c of a
verification pass, so against the evaluation model alone (one token per pass)

    speedup = (1 - alpha^(gamma+1)) / ((1 - alpha)(gamma c + 1)).

Leviathan et al. (2023), "Fast Inference from Transformers via Speculative Decoding", §3.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Literal

from specviz.trace import Trace, summarize

__all__ = [
    "GOALS",
    "IDEAL_ASSUMPTION",
    "IDEAL_WORDS",
    "BudgetUnit",
    "Diagnosis",
    "Finding",
    "Measured",
    "alpha_needed",
    "best_gamma",
    "break_even_alpha",
    "budget_yield",
    "crossover_c",
    "diagnose",
    "expected_tokens",
    "findings",
    "interpolate_cost",
    "measure",
    "needed_text",
    "speedup",
    "step_cost_ms",
]

BudgetUnit = Literal["passes", "positions", "compute"]
Diagnosis = Literal["low_acceptance", "slow_draft", "gamma_too_long", "gamma_too_short", "healthy"]
MAX_GAMMA = 16
# speedups over the evaluation model alone for which the α a chain would need is reported
GOALS = (1.0, 1.5, 2.0)
# the assumption behind every "ideal" speedup, in the words each page and exercise shows beside it
IDEAL_ASSUMPTION = "a pass over γ+1 positions costs one token's pass"  # what every "ideal" figure assumes
IDEAL_WORDS = f"ideal (formula: {IDEAL_ASSUMPTION})"
LOW_ALPHA = 0.5  # below it most steps end at the first or second draft
SLOW_DRAFT_C = 0.3  # above it drafting eats most of the gain (the papers' drafts have c well below 0.1)
GAMMA_GAIN = 1.05  # a γ change that gains less than 5% is not worth naming


def _check(alpha: float, gamma: int) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if gamma < 0:
        raise ValueError(f"gamma must be >= 0, got {gamma}")


def expected_tokens(alpha: float, gamma: int) -> float:
    """(1 − α^(γ+1)) / (1 − α): tokens one verification pass yields on average; γ + 1 at α = 1."""
    _check(alpha, gamma)
    if alpha >= 1.0:
        return float(gamma + 1)
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def speedup(alpha: float, gamma: int, c: float) -> float:
    """(1 − α^(γ+1)) / ((1 − α)(γc + 1)): the expected speedup over the evaluation model alone."""
    if c < 0:
        raise ValueError(f"the cost ratio c must be >= 0, got {c}")
    return expected_tokens(alpha, gamma) / (gamma * c + 1.0)


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


@dataclass(frozen=True)
class Measured:
    """One trace as a point to compare with the model."""

    name: str
    gamma: int  # meta.gamma: the most drafts a step may have
    mean_drafts: float  # drafts per step actually proposed (prompt lookup and adaptive policies draft fewer)
    alpha: float | None  # None: nothing drafted, so no acceptance to measure
    tokens_per_step: float
    predicted_tokens_per_step: float | None  # expected_tokens(alpha, gamma)
    c: float | None  # draft ms per draft token / verify ms per pass, when the trace is timed
    predicted_speedup: float | None
    tokens_per_second: float | None  # tokens / (draft + verify time): the decoding speed the trace shows
    ms_per_token: float | None
    lossless: bool
    steps: int


def measure(trace: Trace, name: str = "", summary: dict[str, Any] | None = None) -> Measured:
    """α, tokens per step, the cost ratio c and the speed a (valid) trace shows.

    α and what it predicts are None for a trace that drafted nothing (undefined, not 0).
    """
    s = summary or summarize(trace)
    meta = trace.get("meta", {})
    steps = trace["steps"]
    gamma = int(meta.get("gamma") or max((len(st["draft"]) for st in steps), default=1) or 1)
    drafted = sum(len(st["draft"]) for st in steps)
    alpha = None if s["alpha"] is None else float(s["alpha"])
    draft_ms = sum(float(st.get("timing_ms", {}).get("draft", 0.0)) for st in steps)
    verify_ms = sum(float(st.get("timing_ms", {}).get("verify", 0.0)) for st in steps)
    c = (draft_ms / drafted) / (verify_ms / len(steps)) if drafted and verify_ms > 0 else None
    total_ms = draft_ms + verify_ms
    tokens = int(s["tokens"])
    return Measured(
        name=name or str(meta.get("sample", {}).get("name") or "trace"),
        gamma=gamma,
        mean_drafts=drafted / len(steps) if steps else 0.0,
        alpha=alpha,
        tokens_per_step=float(s["tokens_per_step"]),
        predicted_tokens_per_step=None if alpha is None else expected_tokens(alpha, gamma),
        c=c,
        predicted_speedup=speedup(alpha, gamma, c) if c is not None and alpha is not None else None,
        tokens_per_second=tokens / (total_ms / 1e3) if total_ms > 0 and tokens else None,
        ms_per_token=total_ms / tokens if total_ms > 0 and tokens else None,
        lossless=bool(meta.get("rule", {}).get("lossless", True)),
        steps=len(steps),
    )


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

    The order: low acceptance (nothing else helps while most drafts fail), then a draft that is
    too expensive, then a γ whose best alternative gains more than 5% (too long or too short).
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
) -> tuple[float, int] | None:
    """The smallest acceptance rate α with which a chain of some gamma <= max_gamma would run `goal`
    times as fast as the evaluation model alone on this machine, and that gamma; None when no α
    (not even 1, a perfect draft) gets there.

    Uses the measured costs instead of the textbook's "verification costs one pass": a step costs
    step_cost_ms(depth = nodes = gamma) and yields (1 − α^(γ+1)) / (1 − α) tokens (Leviathan et
    al. 2023, eq. 1); the evaluation model alone costs one 1-position pass a token. costs: ms per
    pass, by positions."""
    alone = interpolate_cost(costs, 1)

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
