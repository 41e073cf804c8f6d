"""Questions about a whole trace rather than one step: expected tokens per step, the bottleneck (the
cost model's diagnosis, specviz.core.theory), a lossy rule's price, and the numerics' near-ties.

Imports: specviz.core (theory), specviz.figures, specviz.teach, specviz.trace.
"""

from __future__ import annotations

import math
import random
from typing import Any

from specviz.core import theory
from specviz.teach.scenarios import Question, choose
from specviz.teach.wording import (
    quote_token,
)
from specviz.trace import Step, Trace, rule_of
from specviz.trace.parting import TOLERANCE_NATS

__all__ = [
    "DIAGNOSIS_WORDS",
    "bottleneck_question",
    "expected_tokens_question",
    "lossy_question",
    "near_ties",
    "numerics_question",
]


def expected_tokens_question(trace: Trace, rng: random.Random) -> Question | None:
    m = theory.measure(trace)
    if m.alpha is None:  # nothing drafted: no α to ask about
        return None
    # the α the statistics page shows for this trace, to the same two decimals: one number everywhere
    alpha = round(min(max(m.alpha, 0.01), 0.99), 2)
    gamma = m.gamma  # theory.trace_gamma, as on the Statistics page and in the lab
    right = theory.expected_tokens(alpha, gamma)
    wrong_values = [
        gamma * alpha,
        1 / (1 - alpha),
        theory.expected_tokens(alpha, gamma - 1),
        float(gamma + 1),
        theory.expected_tokens(alpha, gamma) - 1,
    ]
    fmt = "{:.2f}".format
    wrong = [fmt(w) for w in wrong_values if abs(w - right) > 0.015]
    options, answer = choose(rng, fmt(right), wrong)
    text = (
        f"This trace measured α = {alpha:.2f} (accepted ÷ tested drafts: the chance a draft the evaluation model tests is "
        f"accepted) with γ = {gamma} drafts per "
        "step. If every decision passed independently with probability α, how many tokens would one step yield on average?"
    )
    why = (
        f"E[tokens per step] = (1 − α^(γ+1)) / (1 − α) = (1 − {alpha:.2f}^{gamma + 1}) / (1 − {alpha:.2f}) = {right:.2f}: "
        f"the accepted run plus the evaluation model's token. The trace itself measured {m.tokens_per_step:.2f}."
    )
    return Question("expected", "expected_tokens", text, options, answer, why, None)


# the bottleneck question's options: one per theory.Diagnosis
DIAGNOSIS_WORDS: dict[theory.Diagnosis, str] = {
    "low_acceptance": "Low acceptance: most drafts are rejected, so each pass yields little",
    "slow_draft": "The draft is too slow: each draft token costs a large share of a verification pass",
    "gamma_too_long": "γ is too long for this α: late drafts are rarely reached",
    "gamma_too_short": "γ is too short: drafts are cheap and usually accepted, so longer drafts would pay",
    "healthy": "Nothing stands out: acceptance, draft cost and γ are in balance",
}


def step_times_words(step: Step) -> str:
    """A step's draft and verify time for the bottleneck excerpt; "not timed" where it has none (c skips it)."""
    t = step.get("timing_ms")
    return f"draft {t.get('draft', 0.0):.1f} ms, verify {t.get('verify', 0.0):.1f} ms" if t else "not timed"


def bottleneck_question(
    trace: Trace, rng: random.Random, avoid: frozenset[int] | set[int] = frozenset()
) -> Question | None:
    """avoid: steps other questions of the set ask about; the excerpt leaves them out (it shows n_accepted)."""
    steps = trace["steps"]
    if len(steps) < 3:
        return None
    m = theory.measure(trace)
    if m.c is None or m.alpha is None:
        return None
    starts = [a for a in range(max(1, len(steps) - 8 + 1)) if not avoid & set(range(a, a + 8))]
    start = rng.choice(starts) if starts else 0
    window = [] if not starts else steps[start : start + 8]
    details = [
        f"step {s['index']}: drafted {len(s['draft'])}, accepted {s['n_accepted']}, {step_times_words(s)}"
        for s in window
    ]
    details.append(
        f"whole trace: {m.steps} steps, α = {m.alpha:.2f}, γ = {m.gamma}, {m.tokens_per_step:.2f} tokens per step, "
        f"cost ratio c = {m.c:.3f}"
    )
    # one home for the diagnosis: the Statistics verdict lists the same findings in the same order
    found = theory.findings(m.alpha, m.gamma, m.c)
    right = DIAGNOSIS_WORDS[found[0].kind]
    holds = {f.kind for f in found}
    # a finding that also holds is true, so it is never offered as a wrong answer
    options, answer = choose(rng, right, [w for kk, w in DIAGNOSIS_WORDS.items() if kk not in holds])
    # the numbers the Statistics verdict words: theory.findings' and theory.measure's, not recomputed here
    g_best, s_best, s_now = found[0].best_gamma, found[0].best_speedup, found[0].speedup
    assert g_best is not None and s_best is not None and s_now is not None  # c is measured: findings has them
    measured = m.measured_speedup
    gain = f"{theory.GAMMA_GAIN - 1:.0%}"
    also = [f.kind for f in found[1:]]
    why = (
        f"With α = {m.alpha:.2f}, γ = {m.gamma} and c = {m.c:.3f} the speedup is {s_now:.2f}× "
        f"{theory.IDEAL_WORDS}"
        + (f"; this run measured {measured:.2f}×" if measured is not None else "")
        + f". The best γ for these numbers is {g_best} ({s_best:.2f}×). "
        + {
            "low_acceptance": f"Below α = {theory.LOW_ALPHA} most steps end at the first or second draft, whatever "
            "the draft costs: "
            "improve the draft (or align the temperatures) before tuning anything else.",
            "slow_draft": "The draft's cost eats the gain: γ draft tokens cost γ·c of a pass. A smaller draft, or "
            "prompt lookup, fixes that.",
            "gamma_too_long": f"γ = {g_best} gains more than {gain}: each extra draft costs c but is reached only with "
            "probability α^j.",
            "gamma_too_short": f"γ = {g_best} gains more than {gain}: cheap, usually accepted drafts add nearly a token "
            "per pass each.",
            "healthy": f"No single change would gain more than {gain}.",
        }[found[0].kind]
        + (
            " "
            + " ".join(
                {
                    "slow_draft": f"The draft's cost (c above {theory.SLOW_DRAFT_C}) matters too, but less.",
                    "gamma_too_long": f"A shorter γ would also help ({g_best}: {s_best:.2f}×), but less; the "
                    "Statistics verdict lists both, in this order.",
                    "gamma_too_short": f"A longer γ would also help ({g_best}: {s_best:.2f}×), but less; the "
                    "Statistics verdict lists both, in this order.",
                }.get(kind, "")
                for kind in also
            )
            if also
            else ""
        )
    )
    text = (
        f"Here is an excerpt of this trace (steps {start}–{start + len(window) - 1}) and its totals. What limits the speedup most?"
        if window
        else "Here are this trace's totals. What limits the speedup most?"
    )
    return Question("bottleneck", "bottleneck", text, options, answer, why, start, tuple(details))


def lossy_question(trace: Trace, rng: random.Random) -> Question | None:
    rule, params = rule_of(trace, "sampling")
    if rule not in ("threshold", "typical"):
        return None
    steps = [
        s for s in trace["steps"] for j, v in enumerate(s["verify"]) if v["accepted"] and v["p"] < s["draft"][j]["q"]
    ]
    how = "p/q ≥ τ" if rule == "threshold" else "p > min(ε, δ·exp(−H(p)))"
    right = (
        f"The '{rule}' rule is lossy: it accepts drafts ({how}) that the sampling rule would sometimes reject, "
        "so more tokens per pass, but the output no longer follows the evaluation model's distribution"
    )
    wrong = [
        "The draft model was updated, so it now agrees more with the evaluation model",
        "Verification got faster because the evaluation model now scores drafts in one pass",
        "It is random variation: a lossless rule and a lossy one produce the same distribution of text",
        "The evaluation model's bonus tokens are wrong more often at high speed",
    ]
    options, answer = choose(rng, right, wrong)
    k = steps[0]["index"] if steps else None
    text = (
        f"After switching to the '{rule}' rule{' (τ = ' + str(params.get('tau')) + ')' if 'tau' in params else ''}, "
        "this service is faster, but reviewers say its answers changed. What explains a fast-but-wrong regression?"
    )
    why = (
        "Only the sampling rule (r < min(1, p/q), residual after a rejection) and greedy verification are lossless. "
        + ("A threshold on p/q" if rule == "threshold" else "A cutoff on p alone")
        + " keeps drafts whose p is smaller than q more often than the sampling rule would"
        + (f" — step {k} accepted such a draft" if k is not None else "")
        + ", so the text drifts toward the draft's preferences."
    )
    return Question("lossy", "lossy_rule", text, options, answer, why, k)


def near_ties(trace: Trace) -> dict[int, tuple[float, list[dict[str, Any]]]]:
    """Greedy steps whose emitted tokens include a near-tie of the evaluation model: step → (the smallest
    gap ln p1 − ln p2 in nats there, the top two entries of its untempered p). Within
    trace.TOLERANCE_NATS["bfloat16"], bfloat16 rounding can swap the two (specviz.trace.parting)."""
    if rule_of(trace, "sampling")[0] != "greedy":
        return {}
    out: dict[int, tuple[float, list[dict[str, Any]]]] = {}
    for step in trace["steps"]:
        emitted = [v for v in step["verify"][: step["n_accepted"]]] + ([step["next"]] if step.get("next") else [])
        for e in emitted:
            top = e.get("top_raw") or []
            if len(top) < 2 or top[1]["prob"] <= 0:
                continue
            gap = math.log(top[0]["prob"]) - math.log(top[1]["prob"])
            if gap <= TOLERANCE_NATS["bfloat16"] and gap < out.get(step["index"], (math.inf, []))[0]:
                out[step["index"]] = (gap, top[:2])
    return out


def numerics_question(trace: Trace, k: int, rng: random.Random) -> Question:
    """Fast but wrong, the numbers' case: a greedy output that parts from float32 at a near-tie."""
    gap, (a, b) = near_ties(trace)[k]
    right = (
        f"No: the two tokens are within bfloat16's rounding ({gap:.3f} nats apart, under "
        f"{TOLERANCE_NATS['bfloat16']}), so the evaluation model alone in bfloat16 could pick either: numerics, not "
        "the method. In exact numerics greedy speculative output equals the model alone's"
    )
    wrong = [
        "Yes: greedy verification accepts drafts that the evaluation model would not have chosen",
        "Yes: speculative decoding trades a little quality for speed whenever it is faster",
        "The draft model's token replaced the evaluation model's at that step",
        "The lossy threshold rule was used, so the drafts drifted",
    ]
    options, answer = choose(rng, right, wrong)
    text = (
        f"A team reruns this greedy trace's settings in fast numerics (bfloat16), and the output differs from the "
        f"float32 run from step {k} on. There the evaluation model's two best tokens were {quote_token(a['token'])} "
        f"(p = {a['prob']:.3f}) and {quote_token(b['token'])} (p = {b['prob']:.3f}). Is speculative decoding lossy here?"
    )
    why = (
        "Greedy verification accepts a draft only when it is the evaluation model's argmax, in any dtype; what a dtype "
        "changes is the argmax itself where two tokens are nearly tied: bfloat16 keeps 8 bits of mantissa, and a pass "
        f"over several positions can round a logit differently from a one-token pass (by up to about "
        f"{TOLERANCE_NATS['bfloat16']} nats, measured). specviz computes each verified position as a one-token pass "
        "does, so its fast output matches the model alone in the same dtype, and the trace proves any parting is a "
        "near-tie (meta.numerics, trace.first_parting). Compare the rule's case: a lossy rule changes the "
        "distribution itself."
    )
    return Question("numerics", "numerics_case", text, options, answer, why, k)
