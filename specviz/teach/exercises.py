"""Exercises made from real trace steps: the course's questions, asked about a step that happened.

Every question is multiple choice, so it can be marked exactly: `options` are plain-text strings
(token text made visible with figures.visible, never markup) and `answer` is the index of the
right one. The same (trace, seed) always gives the same set, so an instructor can hand a whole
class `?seed=N&trace=NAME`. Quoting is fixed: a token is ⟨␣the⟩ and a stretch of text is “…␣the␣cat”,
so a full stop after either is never part of the text. The question record and the course's
scenario questions (with their figures) live in specviz.teach.scenarios, the questions about a whole
trace in specviz.teach.trace_questions, the quoting in specviz.teach.wording; a set asks them last.
Pure: no streamlit, no torch.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from specviz.figures import visible
from specviz.teach.scenarios import GLOSSARY, KINDS, TITLES, Kind, Question, choose, scenario_questions
from specviz.teach.trace_questions import (
    DIAGNOSIS_WORDS,
    bottleneck_question,
    expected_tokens_question,
    lossy_question,
    near_ties,
    numerics_question,
)
from specviz.teach.wording import (
    context_tail,
    numeric_options,
    position_word,
    quote_token,
    quote_tokens,
    step_decisions,
    step_drafts,
)
from specviz.trace import Step, Trace, rule_of

__all__ = ["DIAGNOSIS_WORDS", "GLOSSARY", "KINDS", "TITLES", "Kind", "Question", "make_quiz", "mark", "near_ties"]

SEP = " | "


def mark(question: Question, choice: int | None) -> bool:
    return choice is not None and choice == question.answer


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
        return quote_tokens([nodes[j]["token"] for j in p])

    right = quote_tokens([nodes[j]["token"] for j in path] + tail)
    wrong = [line(p) for p in _paths(step)] + [line(p[: len(path) + 1]) for p in _paths(step)]
    options, answer = choose(rng, right, [w for w in wrong if w != right])
    details = tuple(
        f"node {j}: {quote_token(nd['token'])}, parent {'root' if nd['parent'] < 0 else nd['parent']}, "
        + ("never tested" if nd["accepted"] is None else "accepted" if nd["accepted"] else "rejected")
        for j, nd in enumerate(nodes)
    )
    why = (
        f"Verification walks down from the root and keeps the first accepted child at each depth: here "
        f"{len(path)} node{'s' if len(path) != 1 else ''} ({line(path) if path else 'none'}). "
        + (
            f"Then the evaluation model adds its own token {quote_token(nxt['token'])} ({nxt['kind']}). "
            if nxt is not None
            else ""
        )
        + "The other branches were scored in the same pass, but only one path can be kept."
    )
    text = (
        f"After {context_tail(trace, k)} the draft proposed a tree of {len(nodes)} candidates (listed below with "
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
        f"{quote_token(nodes[first]['token'])} was tested first and rejected; {quote_token(nodes[j]['token'])} hangs from the same "
        "node, so it was tried next." + extra
    )
    text = (
        f"In this tree step, {quote_token(nodes[first]['token'])} and {quote_token(nodes[j]['token'])} are siblings (children of the "
        f"same node), and the rule tested {quote_token(nodes[j]['token'])} second. Why was it tested at all?"
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
    decisions = ", ".join(step_decisions(step))
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
    options, answer = numeric_options(rng, right, [n - 1, n, n + 1, n + 2, g - 1, g, g + 1])
    return Question(f"count-{k}", "count_appended", text, options, answer, why, k)


def _accept_reject(trace: Trace, k: int, j: int, rng: random.Random) -> Question:
    step = trace["steps"][k]
    d, v = step["draft"][j], step["verify"][j]
    rule, params = rule_of(trace, "sampling")
    acc = bool(v["accepted"])
    tok = quote_token(d["token"])
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
                f"the evaluation model's most likely token here: {quote_token(top[0]['token'])} (p = {top[0]['prob']:.4f})"
            )
        text = "Rule 'greedy': is this draft accepted?"
        why = "Greedy verification keeps a draft exactly when it is the evaluation model's argmax at that position" + (
            "; it is." if acc else f"; the argmax is {quote_token(top[0]['token'])} instead." if top else "; it is not."
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
    drafts = step_drafts(step)
    bonus = nxt["kind"] == "bonus"
    src = _SOURCE_WORDS.get(nxt.get("source", "p"), "its own distribution p")
    text = (
        f"The confirmed text ends {context_tail(trace, k)}. The draft proposed {quote_tokens(drafts)} and the evaluation "
        f"model accepted the first {n} of them ({'all' if bonus else 'then a rejection'}). Call i the position of "
        "the last confirmed token. What is the correct, immediate next action?"
    )
    at = position_word(n + 1)
    right = (
        f"The evaluation model generates a bonus token at position {at} from {src}, already computed in the same pass"
        if bonus
        else f"The evaluation model generates the token at position {at} itself, from {src}"
    )
    source = nxt.get("source", "p")
    wrong = [
        f"The draft model proposes again, starting at position {at}, before anything else is added",
        f"The rejected draft is kept, and the draft model continues from position {position_word(g + 1)}",
        f"The evaluation model generates the token at position {at} from the draft's distribution q",
        f"The evaluation model runs a new forward pass over all {g} drafts to double-check them",
    ]
    if not bonus:
        wrong.append(f"The evaluation model generates a bonus token at position {position_word(g + 1)} from p")
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
        f"position {at}, and a bonus token is drawn from it ({quote_token(nxt['token'])} here). One pass, {n + 1} tokens."
        if bonus
        else f"The draft at that position was rejected, so the evaluation model draws the replacement from {src} "
        f"({quote_token(nxt['token'])} here). With the sampling rule that residual is exactly what makes the output "
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
        f"The evaluation model draws its own token {quote_token(nxt['token'])} ({nxt['kind']})",
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
    drafts = step_drafts(step)
    prefix = context_tail(trace, k)
    model = quote_token(nxt["token"])

    def seq(*parts: str) -> str:
        return SEP.join(p for p in parts if p)

    acc = " ".join(quote_token(t) for t in drafts[:n])
    right = seq(prefix, acc, model)
    wrong = [
        seq(prefix, " ".join(quote_token(t) for t in drafts)),
        seq(prefix, " ".join(quote_token(t) for t in drafts), model),
        seq(prefix, acc),
        seq(prefix, model, acc),
        seq(prefix, model),
        seq(prefix, " ".join(quote_token(t) for t in drafts[: n + 1]), model),
    ]
    options, answer = choose(rng, right, wrong)
    text = (
        f"The text so far ends {prefix}. The draft proposed {quote_tokens(drafts)}; {n} {'was' if n == 1 else 'were'} accepted, and the evaluation "
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
    drafts = step_drafts(step)
    prefix = context_tail(trace, k)
    final = "".join(visible(t) for t in [*drafts[:n], nxt["token"]])
    text = (
        f"The text was {prefix}. The draft proposed {quote_tokens(drafts)}. After verification the text is "
        f"{prefix[:-1]}{final}”. How many of the proposed tokens were accepted before the evaluation model added its own?"
    )
    options, answer = numeric_options(rng, n, list(range(0, g + 2)))
    why = (
        f"Read the new text against the drafts: the first {n} match, and the token after them, {quote_token(nxt['token'])}, "
        f"is the evaluation model's {'bonus' if nxt['kind'] == 'bonus' else 'correction'}. "
        "The correction is never the rejected draft itself (a rejected x has p(x) < q(x), so the residual gives it "
        "no mass), so the leading matching run is the count."
    )
    return Question(f"infer-{k}", "infer_accepted", text, options, answer, why, k)


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
        out.append(numerics_question(trace, k, rng))
    for q in (expected_tokens_question(trace, rng), bottleneck_question(trace, rng, used), lossy_question(trace, rng)):
        if q is not None:
            out.append(q)
    return out + scenario_questions(trace, rng)
