"""Exercises made from real trace steps: the course's questions, asked about a step that happened.

Every question is multiple choice, so it can be marked exactly: `options` are plain-text strings
(token text made visible with figures.visible, never markup) and `answer` is the index of the
right one. The same (trace, seed) always gives the same set, so an instructor can hand a whole
class `?seed=N&trace=NAME`. Quoting is fixed: a token is ⟨␣the⟩ and a stretch of text is “…␣the␣cat”,
so a full stop after either is never part of the text. The question record and the course's
scenario questions (with their figures) live in specviz.teach.scenarios; a set asks them last.
Pure: no streamlit, no torch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from specviz.core import theory
from specviz.figures import visible
from specviz.teach.scenarios import GLOSSARY, KINDS, TITLES, Kind, Question, choose, scenario_questions
from specviz.trace import Step, Trace, rule_of
from specviz.trace.parting import TOLERANCE_NATS

__all__ = ["DIAGNOSIS_WORDS", "GLOSSARY", "KINDS", "TITLES", "Kind", "Question", "make_quiz", "mark", "near_ties"]

SEP = " | "


def mark(question: Question, choice: int | None) -> bool:
    return choice is not None and choice == question.answer


# ---------------------------------------------------------------- helpers


def _tok(text: str) -> str:
    """A token as the questions quote it: ⟨␣the⟩, so quotes and commas inside tokens stay readable."""
    return f"⟨{visible(text)}⟩"


def _quote(text: str) -> str:
    """A stretch of (already visible) text as the questions quote it: “…␣sunlight␣reaches”."""
    return f"“{text}”"


def _toks(texts: list[str]) -> str:
    return " ".join(_tok(t) for t in texts) if texts else "(nothing)"


def _numeric(rng: random.Random, right: int, candidates: list[int]) -> tuple[tuple[str, ...], int]:
    """Integer options in increasing order (easier to read than shuffled numbers)."""
    wrong = [c for c in dict.fromkeys(candidates) if c != right and c >= 0]
    picked = sorted([right, *rng.sample(wrong, min(3, len(wrong)))])
    return tuple(str(x) for x in picked), picked.index(right)


def _decisions(step: Step) -> list[str]:
    return [
        "Not tested" if v["accepted"] is None else "Accepted" if v["accepted"] else "Rejected" for v in step["verify"]
    ]


def _drafts(step: Step) -> list[str]:
    return [d["token"] for d in step["draft"]]


def _context_tail(trace: Trace, k: int, n: int = 6) -> str:
    """The last n tokens before step k, visible and quoted; the prompt's end when the output is shorter."""
    toks: list[str] = []
    for s in trace["steps"][:k]:
        toks += [d["token"] for d in s["draft"][: s["n_accepted"]]]
        if s.get("next") is not None:
            toks.append(s["next"]["token"])  # type: ignore[index]
    tail = "".join(visible(t) for t in toks[-n:])
    if len(toks) >= n:
        return _quote("…" + tail)
    if trace.get("meta", {}).get("chat"):
        # the model saw the prompt inside the chat template: the answer starts after the template's header
        return _quote("[start of the answer]" + tail)
    return _quote("…" + visible(str(trace.get("prompt", {}).get("text", ""))[-30:]) + tail)


def _position_word(i: int) -> str:
    return f"i+{i}" if i else "i"


# ---------------------------------------------------------------- the question types


def _paths(step: Step) -> list[list[int]]:
    """Every root-to-leaf path of a tree step, as node indices."""
    nodes = step["tree"]["nodes"]
    leaves = [j for j in range(len(nodes)) if not any(nd["parent"] == j for nd in nodes)]
    out = []
    for leaf in leaves:
        path, j = [], leaf
        while j >= 0:
            path.append(j)
            j = nodes[j]["parent"]
        out.append(path[::-1])
    return out


def _tree_path(trace: Trace, k: int, rng: random.Random) -> Question:
    """Which candidate line of a tree step becomes output (the accepted path, then the model's token)."""
    step = trace["steps"][k]
    nodes, path = step["tree"]["nodes"], step["tree"]["path"]
    nxt = step.get("next")
    tail = [nxt["token"]] if nxt is not None else []

    def line(p: list[int]) -> str:
        return _toks([nodes[j]["token"] for j in p])

    right = _toks([nodes[j]["token"] for j in path] + tail)
    wrong = [line(p) for p in _paths(step)] + [line(p[: len(path) + 1]) for p in _paths(step)]
    options, answer = choose(rng, right, [w for w in wrong if w != right])
    details = tuple(
        f"node {j}: {_tok(nd['token'])}, parent {'root' if nd['parent'] < 0 else nd['parent']}, "
        + ("never tested" if nd["accepted"] is None else "accepted" if nd["accepted"] else "rejected")
        for j, nd in enumerate(nodes)
    )
    why = (
        f"Verification walks down from the root and keeps the first accepted child at each depth: here "
        f"{len(path)} node{'s' if len(path) != 1 else ''} ({line(path) if path else 'none'}). "
        + (
            f"Then the evaluation model adds its own token {_tok(nxt['token'])} ({nxt['kind']}). "
            if nxt is not None
            else ""
        )
        + "The other branches were scored in the same pass, but only one path can be kept."
    )
    text = (
        f"After {_context_tail(trace, k)} the draft proposed a tree of {len(nodes)} candidates (listed below with "
        "each node's parent and the rule's decision). Which tokens does this step add to the output?"
    )
    return Question(f"tree-path-{k}", "tree_path", text, options, answer, why, k, details)


def _tree_sibling(trace: Trace, k: int, rng: random.Random) -> Question:
    """A step where a later sibling was tested: why did the rule try it?"""
    step = trace["steps"][k]
    nodes = step["tree"]["nodes"]
    j = next(j for j, nd in enumerate(nodes) if nd["accepted"] is not None and _earlier_sibling(nodes, j) is not None)
    first = _earlier_sibling(nodes, j)
    sampling = rule_of(trace, "sampling")[0] == "sampling"
    right = (
        "its earlier sibling was rejected, and a tree keeps testing the other candidates at that depth before the "
        "evaluation model draws its own token"
    )
    wrong = [
        "its earlier sibling was accepted, and every accepted token's siblings are tested too",
        "the draft proposes one token per depth, so it is the next depth's draft",
        "the evaluation model always tests every node of the tree, in any order",
        "it had the higher probability q, so it was tested first",
    ]
    options, answer = choose(rng, right, wrong)
    extra = (
        " Under the sampling rule it is tested against what is left: p becomes the residual norm(max(0, p − q)) "
        "and q loses the rejected token, which keeps the output distributed exactly as the evaluation model's."
        if sampling
        else ""
    )
    why = (
        f"{_tok(nodes[first]['token'])} was tested first and rejected; {_tok(nodes[j]['token'])} hangs from the same "
        "node, so it was tried next." + extra
    )
    text = (
        f"In this tree step, {_tok(nodes[first]['token'])} and {_tok(nodes[j]['token'])} are siblings (children of the "
        f"same node), and the rule tested {_tok(nodes[j]['token'])} second. Why was it tested at all?"
    )
    return Question(f"tree-sibling-{k}", "tree_sibling", text, options, answer, why, k)


def _earlier_sibling(nodes: list, j: int) -> int | None:
    """The first child of node j's parent, when that is not j itself (and was tested)."""
    first = next(i for i, nd in enumerate(nodes) if nd["parent"] == nodes[j]["parent"])
    return first if first != j and nodes[first]["accepted"] is False else None


def _count_appended(trace: Trace, k: int, rng: random.Random) -> Question:
    step = trace["steps"][k]
    n, g = step["n_accepted"], len(step["draft"])
    has_next = step.get("next") is not None
    drafts_only = rng.random() < 0.5
    decisions = ", ".join(_decisions(step))
    if drafts_only:
        right = n
        text = (
            f"A step drafted {g} token{'s' if g != 1 else ''} and verified them, in order: [{decisions}]. "
            "How many of the drafted tokens are appended to the output?"
        )
        why = (
            f"Every draft passed, so all {n} are kept (n_accepted = {n}); the evaluation model then adds a bonus "
            "token on top, which is not one of the drafts."
            if n == g
            else f"Only the leading run of accepted drafts is kept: n_accepted = {n}. Verification stops at the "
            "first rejection, and later drafts are discarded even when they would have passed (they were drafted "
            "after a token that is now gone)."
        )
    else:
        right = n + (1 if has_next else 0)
        text = (
            f"A step drafted {g} token{'s' if g != 1 else ''} and verified them, in order: [{decisions}]. "
            "How many tokens does this step add to the output in total, counting the evaluation model's own token?"
        )
        why = (
            f"n_accepted = {n} drafts are kept (the leading run of accepted ones), and the evaluation model then "
            f"adds one token of its own, so {n} + 1 = {n + 1}."
            if has_next
            else f"n_accepted = {n}, and the last accepted draft ended the text (end-of-sequence), so the "
            "evaluation model adds nothing this time."
        )
    if step.get("tree"):  # a tree step: its draft/verify are the line the rule walked, not all it drafted
        size = len(step["tree"]["nodes"])
        text = text.replace(
            f"A step drafted {g} token{'s' if g != 1 else ''} and verified them, in order:",
            f"A step drafted a tree of {size} candidates; down the line the rule walked, the decisions were:",
        )
    options, answer = _numeric(rng, right, [n - 1, n, n + 1, n + 2, g - 1, g, g + 1])
    return Question(f"count-{k}", "count_appended", text, options, answer, why, k)


def _accept_reject(trace: Trace, k: int, j: int, rng: random.Random) -> Question:
    step = trace["steps"][k]
    d, v = step["draft"][j], step["verify"][j]
    rule, params = rule_of(trace, "sampling")
    acc = bool(v["accepted"])
    tok = _tok(d["token"])
    details: list[str] = [
        f"Draft {j + 1} of step {k}: token {tok}",
        f"q({tok}) = {d['q']:.4f} (the draft)",
        f"p({tok}) = {v['p']:.4f} (the evaluation model)",
    ]
    if rule == "sampling" and v.get("p_test") is not None and v.get("q_test") is not None:
        # a tree's later sibling: tested on what was left after the earlier siblings were rejected
        pt, qt = v["p_test"], v["q_test"]
        a = v["accept_prob"] if v["accept_prob"] is not None else min(1.0, pt / qt) if qt else 1.0
        details += [
            f"after the earlier siblings were rejected: p′({tok}) = {pt:.4f}, q′({tok}) = {qt:.4f}",
            f"r = {v['r']:.4f} (the uniform draw)",
        ]
        text = "Rule 'sampling' on a draft tree: is this sibling accepted?"
        why = (
            f"A sibling tried after a rejection is tested on what is left: r < min(1, p′/q′), with p′ the residual "
            f"norm(max(0, p − q)) and q′ the draft's q without the rejected tokens. Here min(1, {pt:.4f} / {qt:.4f}) = "
            f"{a:.4f}, and r = {v['r']:.4f} is {'below' if acc else 'not below'} it, so it is "
            f"{'accepted' if acc else 'rejected'}."
        )
    elif rule == "sampling":
        a = v["accept_prob"] if v["accept_prob"] is not None else min(1.0, v["p"] / d["q"]) if d["q"] else 1.0
        details.append(f"r = {v['r']:.4f} (the uniform draw)")
        text = "Rule 'sampling': is this draft accepted?"
        why = (
            f"The test is r < min(1, p/q). Here min(1, {v['p']:.4f} / {d['q']:.4f}) = {a:.4f}, and r = {v['r']:.4f} is "
            f"{'below' if acc else 'not below'} it, so the draft is {'accepted' if acc else 'rejected'}. A draft the "
            "evaluation model likes at least as much as the draft (p ≥ q) is always accepted."
        )
    elif rule == "threshold":
        tau = params.get("tau", 0.0)
        ratio = v["p"] / d["q"] if d["q"] else float("inf")
        details.append(f"τ = {tau}")
        text = "Rule 'threshold' (lossy): is this draft accepted?"
        why = f"The test is p/q ≥ τ: {v['p']:.4f} / {d['q']:.4f} = {ratio:.4f}, which is {'at least' if acc else 'below'} τ = {tau}. No random draw is involved."
    elif rule == "typical":
        cutoff = v.get("cutoff")
        details.append(f"cutoff min(ε, δ·exp(−H(p))) = {cutoff:.4f}" if cutoff is not None else "cutoff not logged")
        text = "Rule 'typical' (lossy): is this draft accepted?"
        why = f"The test is p > cutoff; p = {v['p']:.4f} is {'above' if acc else 'not above'} it."
    else:
        top = v.get("top") or []
        if top:
            details.append(
                f"the evaluation model's most likely token here: {_tok(top[0]['token'])} (p = {top[0]['prob']:.4f})"
            )
        text = "Rule 'greedy': is this draft accepted?"
        why = "Greedy verification keeps a draft exactly when it is the evaluation model's argmax at that position" + (
            "; it is." if acc else f"; the argmax is {_tok(top[0]['token'])} instead." if top else "; it is not."
        )
    options = ("Accepted", "Rejected")
    return Question(f"accept-{k}-{j}", "accept_reject", text, options, 0 if acc else 1, why, k, tuple(details))


_SOURCE_WORDS = {
    "residual": "the residual distribution norm(max(0, p − q))",
    "p": "its own distribution p",
    "argmax": "the argmax of its own p",
}


def _next_action(trace: Trace, k: int, rng: random.Random) -> Question:
    step = trace["steps"][k]
    n, g = step["n_accepted"], len(step["draft"])
    nxt = step["next"]
    assert nxt is not None
    drafts = _drafts(step)
    bonus = nxt["kind"] == "bonus"
    src = _SOURCE_WORDS.get(nxt.get("source", "p"), "its own distribution p")
    text = (
        f"The confirmed text ends {_context_tail(trace, k)}. The draft proposed {_toks(drafts)} and the evaluation "
        f"model accepted the first {n} of them ({'all' if bonus else 'then a rejection'}). Call i the position of "
        "the last confirmed token. What is the correct, immediate next action?"
    )
    at = _position_word(n + 1)
    right = (
        f"The evaluation model generates a bonus token at position {at} from {src}, already computed in the same pass"
        if bonus
        else f"The evaluation model generates the token at position {at} itself, from {src}"
    )
    source = nxt.get("source", "p")
    wrong = [
        f"The draft model proposes again, starting at position {at}, before anything else is added",
        f"The rejected draft is kept, and the draft model continues from position {_position_word(g + 1)}",
        f"The evaluation model generates the token at position {at} from the draft's distribution q",
        f"The evaluation model runs a new forward pass over all {g} drafts to double-check them",
    ]
    if not bonus:
        wrong.append(f"The evaluation model generates a bonus token at position {_position_word(g + 1)} from p")
        # the same position from another distribution: wrong for this rule (greedy's argmax of p is its p at T = 0)
        for other in ("residual", "p"):
            if other != source and not (source == "argmax" and other == "p"):
                wrong.append(
                    f"The evaluation model generates the token at position {at} itself, from {_SOURCE_WORDS[other]}"
                )
    else:
        wrong.append(
            f"The evaluation model generates the token at position {at} itself, from {_SOURCE_WORDS['residual']}"
        )
    options, answer = choose(rng, right, wrong)
    why = f"n_accepted = {n}, so the next position to fill is {at}. " + (
        f"Every draft passed, so there is nothing to correct: the evaluation model's pass already gave p at "
        f"position {at}, and a bonus token is drawn from it ({_tok(nxt['token'])} here). One pass, {n + 1} tokens."
        if bonus
        else f"The draft at that position was rejected, so the evaluation model draws the replacement from {src} "
        f"({_tok(nxt['token'])} here). With the sampling rule that residual is exactly what makes the output "
        "follow p; the drafts after the rejection are thrown away."
    )
    return Question(f"next-{k}", "next_action", text, options, answer, why, k)


def _order_operations(trace: Trace, k: int, rng: random.Random) -> Question:
    step = trace["steps"][k]
    n, g = step["n_accepted"], len(step["draft"])
    nxt = step["next"]
    assert nxt is not None
    ops = [
        f"The draft proposes {g} token{'s' if g != 1 else ''}, one after another, each with its probability q",
        f"The evaluation model scores all of them in ONE forward pass, giving p at {g + 1} positions",
        f"Left to right, each draft is tested against the rule; the first rejection stops the test (n_accepted = {n})",
        f"The evaluation model draws its own token {_tok(nxt['token'])} ({nxt['kind']})",
        "The accepted drafts and that token are appended; the caches are cut back and the drafter hears n_accepted",
    ]
    letters = "ABCDE"
    shown = list(range(len(ops)))
    rng.shuffle(shown)  # shown[i] = which op carries letter i
    label = {op: letters[i] for i, op in enumerate(shown)}
    right = " → ".join(label[o] for o in range(len(ops)))
    wrong_orders = [
        [1, 0, 2, 3, 4],  # verify before drafting
        [0, 2, 1, 3, 4],  # accept before the pass
        [0, 1, 3, 2, 4],  # the model's token before the test
        [0, 1, 2, 4, 3],  # append before the token exists
        [0, 1, 4, 2, 3],
    ]
    wrong = [" → ".join(label[o] for o in order) for order in wrong_orders]
    options, answer = choose(rng, right, wrong)
    details = tuple(f"{letters[i]}. {ops[op]}" for i, op in enumerate(shown))
    why = (
        "Draft, then one pass of the evaluation model, then the left-to-right test, then the evaluation model's own "
        "token at the first free position, and only then the update. The evaluation model's token needs the test's "
        "result (it depends on n_accepted), and nothing is appended before the step is decided."
    )
    text = f"Step {k} of this trace, in shuffled pieces. Which order finalises the step correctly?"
    return Question(f"order-{k}", "order_operations", text, options, answer, why, k, details)


def _assemble(trace: Trace, k: int, rng: random.Random) -> Question:
    step = trace["steps"][k]
    n = step["n_accepted"]
    nxt = step["next"]
    assert nxt is not None
    drafts = _drafts(step)
    prefix = _context_tail(trace, k)
    model = _tok(nxt["token"])

    def seq(*parts: str) -> str:
        return SEP.join(p for p in parts if p)

    acc = " ".join(_tok(t) for t in drafts[:n])
    right = seq(prefix, acc, model)
    wrong = [
        seq(prefix, " ".join(_tok(t) for t in drafts)),
        seq(prefix, " ".join(_tok(t) for t in drafts), model),
        seq(prefix, acc),
        seq(prefix, model, acc),
        seq(prefix, model),
        seq(prefix, " ".join(_tok(t) for t in drafts[: n + 1]), model),
    ]
    options, answer = choose(rng, right, wrong)
    text = (
        f"The text so far ends {prefix}. The draft proposed {_toks(drafts)}; {n} {'was' if n == 1 else 'were'} accepted, and the evaluation "
        f"model produced {model}. Which is the updated sequence (prefix | accepted drafts | the evaluation model's token)?"
    )
    why = (
        f"The update is always prefix | the n_accepted = {n} accepted drafts | one token from the evaluation model. "
        + (
            "Every draft passed, so that token is a bonus from p."
            if nxt["kind"] == "bonus"
            else "The rejected draft and everything after it are dropped, and the evaluation model's token takes the rejected one's place."
        )
    )
    return Question(f"assemble-{k}", "assemble_sequence", text, options, answer, why, k)


def _infer_accepted(trace: Trace, k: int, rng: random.Random) -> Question:
    step = trace["steps"][k]
    n, g = step["n_accepted"], len(step["draft"])
    nxt = step["next"]
    assert nxt is not None
    drafts = _drafts(step)
    prefix = _context_tail(trace, k)
    final = "".join(visible(t) for t in [*drafts[:n], nxt["token"]])
    text = (
        f"The text was {prefix}. The draft proposed {_toks(drafts)}. After verification the text is "
        f"{prefix[:-1]}{final}”. How many of the proposed tokens were accepted before the evaluation model added its own?"
    )
    options, answer = _numeric(rng, n, list(range(0, g + 2)))
    why = (
        f"Read the new text against the drafts: the first {n} match, and the token after them, {_tok(nxt['token'])}, "
        f"is the evaluation model's {'bonus' if nxt['kind'] == 'bonus' else 'correction'}. "
        "The correction is never the rejected draft itself (a rejected x has p(x) < q(x), so the residual gives it "
        "no mass), so the leading matching run is the count."
    )
    return Question(f"infer-{k}", "infer_accepted", text, options, answer, why, k)


def _expected_tokens(trace: Trace, rng: random.Random) -> Question | None:
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
        f"This trace measured α = {alpha:.2f} (each draft accepted with that probability) with γ = {gamma} drafts per "
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


def _times(step: Step) -> str:
    """A step's draft and verify time for the bottleneck excerpt; "not timed" where it has none (c skips it)."""
    t = step.get("timing_ms")
    return f"draft {t.get('draft', 0.0):.1f} ms, verify {t.get('verify', 0.0):.1f} ms" if t else "not timed"


def _bottleneck(trace: Trace, rng: random.Random, avoid: frozenset[int] | set[int] = frozenset()) -> Question | None:
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
    details = [f"step {s['index']}: drafted {len(s['draft'])}, accepted {s['n_accepted']}, {_times(s)}" for s in window]
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


def _lossy(trace: Trace, rng: random.Random) -> Question | None:
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


def _numerics(trace: Trace, k: int, rng: random.Random) -> Question:
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
        f"float32 run from step {k} on. There the evaluation model's two best tokens were {_tok(a['token'])} "
        f"(p = {a['prob']:.3f}) and {_tok(b['token'])} (p = {b['prob']:.3f}). Is speculative decoding lossy here?"
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


# ---------------------------------------------------------------- the set


def make_quiz(trace: Trace, seed: int, name: str = "trace") -> list[Question]:
    """One question of each kind the trace can support, each about a step chosen by the seed, then
    the scenarios its data supports (specviz.teach.scenarios)."""
    rng = random.Random(f"specviz-exercises:{name}:{seed}")
    steps = trace["steps"]
    if not steps:
        return []
    with_drafts = [s["index"] for s in steps if s["draft"]]
    with_next = [k for k in with_drafts if steps[k].get("next") is not None]
    # prefer steps that teach something: a rejection after at least one acceptance, or a bonus
    rich = [k for k in with_next if 0 < steps[k]["n_accepted"] < len(steps[k]["draft"])] or with_next
    decided = [(s["index"], j) for s in steps for j, v in enumerate(s["verify"]) if v["accepted"] is not None]
    # Questions in one set must not answer each other: "the first 2 were accepted" in one and "how many
    # were accepted?" in the next, about the same step. So every step-based question gets a step of
    # its own (a question is left out when no unused step fits it).
    used: set[int] = set()

    def pick(pool: list[int], fallback: list[int] = with_next) -> int | None:
        free = [k for k in pool if k not in used] or [k for k in fallback if k not in used]
        if not free:
            return None
        k = rng.choice(free)
        used.add(k)
        return k

    out: list[Question] = []
    if (k := pick(with_drafts, [])) is not None:
        out.append(_count_appended(trace, k, rng))
    rejected = [(k, j) for k, j in decided if steps[k]["verify"][j]["accepted"] is False]
    # half the time a rejection, which is the rarer and more interesting case
    pairs = [(k, j) for k, j in (rejected if rejected and rng.random() < 0.5 else decided) if k not in used]
    if pairs:
        k, j = rng.choice(pairs)
        used.add(k)
        out.append(_accept_reject(trace, k, j, rng))
    bonus = [k for k in with_next if steps[k]["next"]["kind"] == "bonus"]  # type: ignore[index]
    makers: list[tuple[Callable[[Trace, int, random.Random], Question], list[int]]] = [
        (_next_action, bonus if bonus and rng.random() < 0.3 else rich),
        (_order_operations, with_next),
        (_assemble, rich),
        (_infer_accepted, rich),
    ]
    for maker, pool in makers:  # a preferred pool first, then any step with a next token
        if (k := pick(pool)) is not None:
            out.append(maker(trace, k, rng))
    trees = [k for k in with_next if steps[k].get("tree") and len(steps[k]["tree"]["nodes"]) > 1]
    if (k := pick(trees, [])) is not None:
        out.append(_tree_path(trace, k, rng))
    tried = [
        k
        for k in trees
        if any(
            nd["accepted"] is not None and _earlier_sibling(steps[k]["tree"]["nodes"], j) is not None
            for j, nd in enumerate(steps[k]["tree"]["nodes"])
        )
    ]
    if (k := pick(tried, [])) is not None:
        out.append(_tree_sibling(trace, k, rng))
    ties = near_ties(trace)
    close = sorted(k for k, (gap, _) in ties.items() if gap < 0.15)  # the most telling near-ties first
    if (k := pick(close or sorted(ties), [])) is not None:
        out.append(_numerics(trace, k, rng))
    for q in (_expected_tokens(trace, rng), _bottleneck(trace, rng, used), _lossy(trace, rng)):
        if q is not None:
            out.append(q)
    return out + scenario_questions(trace, rng)
