"""The course's scenarios as exercises, made from real data: the record every question is (Question),
and five questions an engineer meets when speculative decoding goes to production.

Each scenario reads numbers a trace (or a serving engine's run summary) measured — α, the cost
ratio c, γ, the p/q of every tested draft, per-position acceptance — asks one decision about them,
draws its figure, and has exactly one defensible answer: the options that would also be true are
left out, never marked wrong. Every speedup the scenarios quote says its assumption
(theory.IDEAL_WORDS). specviz.teach.exercises asks them after its step questions. Pure: no streamlit,
no torch.

- choose_tau: the threshold rule's τ, and which model drafts, for a latency goal.
- budget_gamma: γ under a fixed verification budget (theory.budget_yield, "positions").
- control_policy: when a latency-sensitive product turns speculation off (theory.break_even_alpha).
- production_metrics: a slowdown read from an engine's counters (acceptance, per position).
- verify_cost: a low speedup despite parallel verification: the wide pass costs more than one token's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import plotly.graph_objects as go

from specviz.core import theory
from specviz.figures import speedup as fspeedup
from specviz.figures import stats as fstats
from specviz.trace import Trace, rule_of, summarize

__all__ = [
    "GLOSSARY",
    "KINDS",
    "PASS_COST_MS",
    "SCENARIO_KINDS",
    "TITLES",
    "Kind",
    "Question",
    "budget_gamma",
    "choose",
    "choose_tau",
    "control_policy",
    "production_metrics",
    "scenario_questions",
    "verify_cost",
]

Kind = Literal[
    "count_appended",
    "accept_reject",
    "next_action",
    "order_operations",
    "assemble_sequence",
    "infer_accepted",
    "expected_tokens",
    "bottleneck",
    "lossy_rule",
    "numerics_case",
    "tree_path",
    "tree_sibling",
    "choose_tau",
    "budget_gamma",
    "control_policy",
    "production_metrics",
    "verify_cost",
]
SCENARIO_KINDS: tuple[Kind, ...] = ("choose_tau", "budget_gamma", "control_policy", "production_metrics", "verify_cost")
KINDS: tuple[Kind, ...] = get_args(Kind)  # in the order the exercises page lists them
TITLES: dict[Kind, str] = {
    "count_appended": "How many tokens does the step add?",
    "accept_reject": "Accept or reject?",
    "next_action": "What does the evaluation model do next?",
    "order_operations": "The order of operations in a step",
    "assemble_sequence": "Assemble the updated sequence",
    "infer_accepted": "How many drafts were accepted?",
    "expected_tokens": "Expected tokens per step",
    "bottleneck": "Read the trace: what is the bottleneck?",
    "lossy_rule": "Fast but wrong? The rule",
    "numerics_case": "Fast but wrong? The numbers",
    "tree_path": "Which path of the draft tree wins?",
    "tree_sibling": "Why was a sibling tried?",
    "choose_tau": "Scenario: choose τ and the roles of the two models",
    "budget_gamma": "Scenario: γ under a fixed verification budget",
    "control_policy": "Scenario: when to turn speculation off",
    "production_metrics": "Scenario: diagnose a slowdown from production metrics",
    "verify_cost": "Scenario: a low speedup despite parallel verification",
}
# the glossary entry (an anchor on the speedup lab page) each kind leans on
GLOSSARY: dict[Kind, str] = {
    "count_appended": "consecutively-accepted-tokens",
    "accept_reject": "acceptance-rule",
    "next_action": "residual-distribution",
    "order_operations": "speculative-decoding-step",
    "assemble_sequence": "post-acceptance-token",
    "infer_accepted": "consecutively-accepted-tokens",
    "expected_tokens": "expected-tokens-per-step",
    "bottleneck": "expected-speedup",
    "lossy_rule": "lossless",
    "numerics_case": "numerics",
    "tree_path": "draft-tree",
    "tree_sibling": "draft-tree",
    "choose_tau": "acceptance-rule",
    "budget_gamma": "gamma",
    "control_policy": "expected-speedup",
    "production_metrics": "consecutively-accepted-tokens",
    "verify_cost": "expected-speedup",
}

# One evaluation pass over k new positions, ms, float32 (output layer prepacked) on the benchmark CPU (context 38):
# docs/results/pass-cost.json, measured by scripts/pass_cost.py (docs/BENCHMARKS.md); a test keeps them equal.
PASS_COST_MS: dict[int, float] = {
    1: 49.219489,
    2: 53.847557,
    5: 69.617008,
    9: 80.356495,
    17: 99.495765,
    33: 125.222073,
}
PASS_COST_SOURCE = "docs/results/pass-cost.json (float32, the benchmark CPU)"


@dataclass(frozen=True)
class Question:
    qid: str  # stable within a set: used for widget keys and scoring
    kind: Kind
    text: str  # the question, plain text
    options: tuple[str, ...]
    answer: int  # index into options
    explanation: str  # plain text, shown after an answer
    step: int | None = None  # the trace step it is about, for a link to the replay view
    details: tuple[str, ...] = field(default_factory=tuple)  # the data to read, one plain-text line each
    figure: dict[str, Any] | None = field(default=None, hash=False)  # a Plotly figure as a plain dict

    @property
    def title(self) -> str:
        return TITLES[self.kind]


def choose(rng: random.Random, right: str, wrong: list[str], limit: int = 4) -> tuple[tuple[str, ...], int]:
    """The right option among up to limit − 1 distinct wrong ones, shuffled."""
    seen = {right}
    others = []
    for w in wrong:
        if w not in seen:
            seen.add(w)
            others.append(w)
    options = [right, *rng.sample(others, min(limit - 1, len(others)))]
    rng.shuffle(options)
    return tuple(options), options.index(right)


def _plain(fig: go.Figure) -> dict[str, Any]:
    return fig.to_dict()


def _timed(trace: Trace) -> tuple[float, int, float] | None:
    """(α, γ, c) of a chain trace that drafted and was timed; None otherwise."""
    m = theory.measure(trace)
    if m.alpha is None or m.c is None or any(s.get("tree") for s in trace["steps"]):
        return None
    return m.alpha, m.gamma, m.c


# ---------------------------------------------------------------- (a) τ and the models' roles

TAUS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def tau_alphas(trace: Trace) -> list[float]:
    """α the threshold rule p/q ≥ τ would have had at each τ in TAUS, on the drafts this trace tested."""
    ratios = [
        v["p"] / d["q"]
        for s in trace["steps"]
        for d, v in zip(s["draft"], s["verify"], strict=False)
        if v["accepted"] is not None and d["q"] > 0
    ]
    return [sum(r >= tau for r in ratios) / len(ratios) for tau in TAUS] if ratios else []


def choose_tau(trace: Trace, rng: random.Random) -> Question | None:
    """The largest τ (the fewest lossy acceptances) that reaches a speedup goal, and who drafts."""
    rule = rule_of(trace)[0]
    temperature = float(trace.get("meta", {}).get("sampling", {}).get("temperature") or 0.0)
    timed = _timed(trace)
    if timed is None or rule not in ("sampling", "threshold") or temperature <= 0:
        return None
    _, gamma, c = timed
    alphas = tau_alphas(trace)
    if not alphas:
        return None
    speeds = [theory.speedup(min(a, 1.0), gamma, c) for a in alphas]
    # a τ is askable when the next stricter τ falls clearly short of its speedup
    fits = [i for i in range(1, len(TAUS) - 1) if speeds[i] > speeds[i + 1] + 0.02]
    if not fits:
        return None
    i = rng.choice(fits)
    goal = (int(speeds[i] * 100) - 1) / 100  # just under τ_i's speedup, above τ_(i+1)'s
    if speeds[i + 1] >= goal:
        return None

    def setting(drafter: str, verifier: str, tau: float) -> str:
        return f"{drafter} drafts, {verifier} verifies, τ = {tau}"

    small, big = "the small draft model", "the evaluation model"
    right = setting(small, big, TAUS[i])
    wrong = [setting(big, small, TAUS[i]), setting(small, big, TAUS[i + 1]), setting(small, big, TAUS[i - 1])]
    options, answer = choose(rng, right, wrong)
    text = (
        f"A low-latency product runs this pair with γ = {gamma} (c = {c:.3f}) at temperature {temperature} and may use "
        f"the lossy threshold rule (accept a draft when p/q ≥ τ). It needs at least {goal:.2f}× "
        f"(ideal, assuming {theory.IDEAL_ASSUMPTION}) and wants the output as close to the evaluation model's as that allows: the "
        "largest τ that reaches the goal. The chart gives each τ's speedup, with α(τ) read from the p/q of every "
        "draft this trace tested. Which setting do you ship?"
    )
    details = tuple(f"τ = {t}: α ≈ {a:.2f}, {s:.2f}× ideal" for t, a, s in zip(TAUS, alphas, speeds, strict=True))
    why = (
        f"τ = {TAUS[i]} gives {speeds[i]:.2f}× and τ = {TAUS[i + 1]} only {speeds[i + 1]:.2f}×, so {TAUS[i]} is the "
        f"largest τ that reaches {goal:.2f}×; a smaller τ accepts more drafts the evaluation model would not have "
        "written, for speed the product does not need. The roles never swap: the small model drafts because drafting "
        "is serial (one pass per token) and must be cheap, and the evaluation model verifies because it checks all "
        "γ drafts in one pass and its distribution is the one the output should follow."
    )
    fig = fstats.tau_figure(list(TAUS), alphas, speeds, goal)
    return Question("scenario-tau", "choose_tau", text, options, answer, why, None, details, _plain(fig))


# ---------------------------------------------------------------- (b) γ under a fixed budget

BUDGETS = (60, 120, 240)
MAX_GAMMA = 12


def budget_gamma(trace: Trace, rng: random.Random) -> Question | None:
    """The γ that yields the most tokens from a fixed verification budget: positions the evaluation
    model may score (a busy server), or its time, which drafting shares at c a token."""
    m = theory.measure(trace)
    if m.alpha is None:
        return None
    alpha = round(min(max(m.alpha, 0.01), 0.99), 2)  # the α the Statistics page shows
    unit: theory.BudgetUnit = "compute" if m.c is not None and rng.random() < 0.5 else "positions"
    c = m.c if unit == "compute" and m.c is not None else 0.0
    budget = rng.choice(BUDGETS)
    gs = list(range(1, MAX_GAMMA + 1))
    tokens = {g: theory.budget_yield(alpha, g, budget, unit, c) for g in gs}
    best = max(gs, key=lambda g: (tokens[g], -g))
    close = {g for g in gs if tokens[g] >= 0.98 * tokens[best]}  # near-ties are not asked about
    if close != {best}:
        return None
    wrong = [g for g in gs if g not in close]
    picked = sorted([best, *rng.sample(wrong, min(3, len(wrong)))])
    options, answer = tuple(f"γ = {g}" for g in picked), picked.index(best)
    if unit == "positions":
        budget_words = (
            f"lets this service's evaluation model score {budget} positions per second of verification (a pass over "
            "γ drafts scores γ + 1 of them)"
        )
        rule = f"the budget buys {budget} // (γ + 1) passes"
        moral = "Per position scored, every extra draft yields less than the one before, so short drafts win."
        lines = [f"γ = {g}: {budget // (g + 1)} passes × {theory.expected_tokens(alpha, g):.2f} tokens" for g in picked]
    else:
        budget_words = (
            f"gives this service {budget} one-token passes' worth of evaluation-model time per second, and drafting "
            f"spends it too (c = {c:.3f} of a pass per draft token)"
        )
        rule = f"a step costs 1 + γc of it, so the budget buys {budget} / (1 + γ·{c:.3f}) steps"
        moral = "Longer drafts cost γc each step and their late positions are rarely reached."
        lines = [
            f"γ = {g}: {budget / (1 + g * c):.1f} steps × {theory.expected_tokens(alpha, g):.2f} tokens" for g in picked
        ]
    text = (
        f"A busy server {budget_words}. With α = {alpha:.2f}, measured on this trace, which γ yields the most tokens "
        "from that budget?"
    )
    why = (
        f"Each step yields (1 − α^(γ+1)) / (1 − α) tokens, and {rule}: γ = {best} gives {tokens[best]:.1f} tokens. "
        + moral
    )
    fig = fspeedup.budget_figure(alpha, budget, unit, c, max_gamma=MAX_GAMMA)
    return Question("scenario-budget", "budget_gamma", text, options, answer, why, None, tuple(lines), _plain(fig))


# ---------------------------------------------------------------- (c) a control policy

WINDOW = 8  # steps per measuring window


def window_alphas(trace: Trace) -> list[float]:
    """α in consecutive windows of WINDOW steps, as a controller would measure it (windows with decisions)."""
    out = []
    steps = trace["steps"]
    for a in range(0, len(steps), WINDOW):
        win = steps[a : a + WINDOW]
        acc = sum(st["n_accepted"] for st in win)
        rej = sum(1 for st in win if st["n_accepted"] < len(st["draft"]))
        if acc + rej:
            out.append(acc / (acc + rej))
    return out


def control_policy(trace: Trace, rng: random.Random) -> Question | None:
    """Below which measured α no γ pays, so a latency-sensitive product turns speculation off."""
    timed = _timed(trace)
    if timed is None:
        return None
    _, gamma, c = timed
    off = theory.break_even_alpha(c)
    at_gamma = theory.break_even_alpha_at(gamma, c)

    def policy(x: float) -> str:
        return f"turn speculation off below α = {x:.3f}; above it, speculate with the best γ for the window's α"

    right = policy(off)
    wrong = [policy(x) for x in (at_gamma, theory.LOW_ALPHA, gamma * c, 1 - c) if f"{x:.3f}" != f"{off:.3f}"]
    options, answer = choose(rng, right, wrong)
    windows = window_alphas(trace)
    below = sum(a < off for a in windows)
    text = (
        f"A latency-sensitive product must never be slower than the evaluation model alone. Its controller measures α "
        f"over windows of {WINDOW} steps; this pair's cost ratio is c = {c:.3f} and it now drafts γ = {gamma}. Which "
        f"policy speculates exactly when some γ from 1 up pays (ideal, assuming {theory.IDEAL_ASSUMPTION})?"
    )
    why = (
        f"At γ = 1 the speedup is (1 + α) / (1 + c), which reaches 1× at α = c = {off:.3f}; every longer γ needs more "
        f"(γ = {gamma} needs α ≥ {at_gamma:.3f}), so below α = c nothing pays and above it the best γ for the "
        f"measured α does. α = {theory.LOW_ALPHA} is a rule of thumb for low acceptance, not a break-even. Of this trace's "
        f"{len(windows)} windows, {below} would have turned speculation off."
    )
    details = (f"windows of {WINDOW} steps, α: " + ", ".join(f"{a:.2f}" for a in windows),)
    fig = fstats.break_even_figure(c, gamma, windows)
    return Question("scenario-control", "control_policy", text, options, answer, why, None, details, _plain(fig))


# ---------------------------------------------------------------- (d) production metrics

Reading = Literal["first", "late", "fine"]


def readings(per_position: list[float], survival: bool) -> tuple[Reading, ...]:
    """What a per-position acceptance profile shows, most important first.

    survival: the rates are shares of drafting steps that accepted position j (engines' counters);
    otherwise acceptance among the steps that reached j (a trace's), turned into shares here.
    "first": position 1 is accepted in fewer than half the steps; "late": the last position is
    accepted in fewer than a quarter of them; "fine": neither.
    """
    shares = list(per_position) if survival else _cumprod(per_position)
    out: list[Reading] = []
    if shares[0] < 0.5:
        out.append("first")
    if len(shares) > 1 and shares[-1] < 0.25:
        out.append("late")
    if not out:
        out.append("fine")
    return tuple(out)


def production_metrics(
    stats: dict[str, Any],
    rng: random.Random,
    where: str,
    survival: bool,
) -> Question | None:
    """A slowdown diagnosed from the counters a serving engine exports (summary_stats' keys, or
    summarize's for a trace): acceptance rate, mean acceptance length, per-position acceptance."""
    per_pos = stats.get("per_position_acceptance")
    if not per_pos or any(r is None for r in per_pos) or stats.get("acceptance_rate") is None:
        return None
    shares = list(per_pos) if survival else _cumprod(per_pos)
    gamma = len(per_pos)
    found = readings(per_pos, survival)
    words: dict[Reading, str] = {
        "first": f"The first draft is accepted in only {shares[0]:.0%} of drafting steps: the draft disagrees with the "
        "evaluation model from the start (draft quality, or a temperature the two do not share)",
        "late": f"Acceptance decays with position: the last of γ = {gamma} drafts is accepted in only {shares[-1]:.0%} "
        "of drafting steps, so verification spends work on drafts that rarely pay; a shorter γ would",
        "fine": "Acceptance holds up at every position: these counters do not explain the slowdown; look at the time "
        "drafting and verification take, which they do not show",
    }
    right = words[found[0]]
    wrong = [w for r, w in words.items() if r not in found]
    length = stats.get("tokens_per_step")
    if length is not None:
        wrong.append(
            f"The mean acceptance length {length:.2f} means {length:.2f} of the {gamma} drafts are accepted per step, "
            "so acceptance is nearly perfect"
        )
    wrong.append(
        f"The acceptance rate {stats['acceptance_rate']:.0%} is the share of steps in which every draft was accepted"
    )
    options, answer = choose(rng, right, wrong)
    details = [f"acceptance rate (accepted / drafted): {stats['acceptance_rate']:.1%}"]
    if length is not None:
        details.append(f"mean acceptance length (tokens per verification step, the bonus token included): {length:.2f}")
    details.append(
        "accepted at draft position j, share of drafting steps: "
        + ", ".join(f"{j + 1}: {x:.0%}" for j, x in enumerate(shares))
    )
    text = (
        f"After a deploy, a speculative service ({where}) is slower than planned. Its dashboard shows the counters "
        "below. Which reading of them is right?"
    )
    why = (
        {
            "first": "Most steps end at the first draft, so each pass yields little whatever γ is: fix the draft's "
            "agreement with the evaluation model before tuning γ.",
            "late": "The early positions pay, the last ones rarely do: each costs a verification position and a draft "
            "token, and is reached only when every draft before it passed.",
            "fine": "Every position is accepted often enough, so acceptance is not the problem: the time split "
            "(draft vs verify, batch effects) is what to measure next.",
        }[found[0]]
        + " The mean acceptance length counts tokens per verification step with the bonus token included, and the "
        "acceptance rate is accepted / drafted tokens, not a share of steps. Nor is it the formula's α (accepted / "
        "tested drafts): a draft after a rejection is never tested, so the rate over all drafts is the lower one."
    )
    # the chart shows what the dashboard lines quote: the share of drafting steps accepted at each position
    fig = fstats.per_position_figure(
        dict(stats) | {"alpha": None, "per_position_acceptance": shares}, "share of drafting steps"
    )
    return Question(
        "scenario-production", "production_metrics", text, options, answer, why, None, tuple(details), _plain(fig)
    )


def _cumprod(xs: list[float]) -> list[float]:
    out, run = [], 1.0
    for x in xs:
        run *= x
        out.append(run)
    return out


# ---------------------------------------------------------------- (e) the wide pass's cost


def verify_cost(trace: Trace, rng: random.Random) -> Question | None:
    """Why the speedup stays low although verification is one parallel pass: that pass costs more than one token's."""
    timed = _timed(trace)
    if timed is None:
        return None
    alpha, gamma, c = timed
    k = theory.measure(trace)
    if k.verify_passes is not None and k.measured_speedup is not None:  # the trace measured its own pass cost
        passes, got, source = k.verify_passes, k.measured_speedup, "measured on this run"
        where = f"This run measured {got:.2f}×"
    else:
        passes = theory.interpolate_cost(PASS_COST_MS, gamma + 1) / PASS_COST_MS[1]
        # c is a draft token's time over one (γ+1)-position pass: in one-token passes a step costs
        # γ·c·passes + passes
        got = theory.speedup_at_costs(alpha, gamma, c * passes, passes)
        source = PASS_COST_SOURCE
        where = f"With the pass costs measured on the machine of {source} it gets {got:.2f}×"
    if passes < theory.WIDE_PASS:  # the pass costs about one token's: not the gap this scenario is about
        return None
    ideal = theory.speedup(alpha, gamma, c)
    right = (
        f"A pass over γ + 1 = {gamma + 1} positions costs {passes:.2f} one-token passes, not the 1.0 the ideal assumes"
    )
    holds = {f.kind for f in theory.findings(alpha, gamma, c)}
    wrong = [
        *([f"Acceptance is too low (α = {alpha:.2f})"] if "low_acceptance" not in holds else []),
        *([f"The draft is too slow (c = {c:.3f})"] if "slow_draft" not in holds else []),
        f"The evaluation model runs one pass per draft token, {gamma} passes a step",
        "The bonus token needs an extra pass of the evaluation model of its own",
        "Verification checks the drafts one after another, so its pass grows with γ",
    ]
    options, answer = choose(rng, right, wrong)
    text = (
        f"This pair drafts γ = {gamma} with α = {alpha:.2f} and c = {c:.3f}; the formula gives {ideal:.2f}× "
        f"(ideal, assuming {theory.IDEAL_ASSUMPTION}). {where}, although all {gamma} drafts are verified in one "
        "parallel pass. What explains the gap between the two?"
    )
    why = (
        f"The ideal {ideal:.2f}× already uses this α and this c, so neither explains the gap. What it leaves out is the "
        f"width of the pass: scoring {gamma + 1} positions is not free on this hardware ({passes:.2f}× a one-token "
        f"pass), so a step costs γc + {passes:.2f} passes instead of γc + 1. Parallel verification saves passes, not "
        "the arithmetic each position needs; it is nearly free only while the hardware has idle compute."
    )
    costs = dict(PASS_COST_MS) if source == PASS_COST_SOURCE else {1: 1.0, gamma + 1: passes}
    details = (
        tuple(
            f"{n} position{'s' if n > 1 else ''}: {ms:.1f} ms ({ms / costs[1]:.2f} one-token passes)"
            for n, ms in sorted(costs.items())
        )
        if source == PASS_COST_SOURCE
        else (f"one verification pass = {passes:.2f} target-alone tokens (this run)",)
    )
    fig = fstats.pass_cost_figure(
        costs, gamma + 1 if gamma + 1 in costs else min(costs, key=lambda n: abs(n - gamma - 1))
    )
    return Question("scenario-verify", "verify_cost", text, options, answer, why, None, details, _plain(fig))


# ---------------------------------------------------------------- the set


def scenario_questions(trace: Trace, rng: random.Random) -> list[Question]:
    """Every scenario this trace's data supports, in the course's order."""
    s = summarize(trace)
    chain = not any(st.get("tree") for st in trace["steps"])
    made = [
        choose_tau(trace, rng),
        budget_gamma(trace, rng),
        control_policy(trace, rng),
        production_metrics(s, rng, "this trace", False) if chain else None,
        verify_cost(trace, rng),
    ]
    return [q for q in made if q is not None]
