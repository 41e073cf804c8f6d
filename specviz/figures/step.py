"""One step, cell by cell and in words, and where each output token came from.

`step_cells` reads step k as cells (each drafted token, then the evaluation model's own token),
with the rule's test in words; `describe_step` and `describe_next` say the step in sentences;
`provenance` lists the output's tokens with the step and kind that produced each. The figures
(specviz.figures.timeline, .replay, .home) and the browser player draw from these.

Traces may be minimal (an event-log import, another engine's log): q, p, r, top lists or the
evaluation model's own token can be missing; the cells carry None there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from specviz.figures.palette import LABELS, Kind
from specviz.figures.text import fmt_num, visible
from specviz.trace import Trace, no_draft_reason, rule_of, token_bytes

__all__ = [
    "Cell",
    "OutTok",
    "describe_next",
    "describe_step",
    "draft_outcome",
    "provenance",
    "step_cells",
]


@dataclass(frozen=True)
class Cell:
    """One drafted token (position 0..gamma-1) or the evaluation model's own token."""

    step: int
    position: int  # 0-based draft position; for the model's token: its place after n_accepted drafts
    kind: Kind
    token: str
    token_id: int
    p: float | None
    q: float | None
    test: str  # the rule's test in words, e.g. "r = 0.12 < min(1, p/q) = 0.87"
    p_raw: float | None = None  # the models' own probabilities before warping, where logged
    q_raw: float | None = None
    copied: int = 0  # a draft copied from earlier text after n matching tokens (prompt-lookup fallback); 0: none
    stopped: str = ""  # on a chain's last draft: why drafting stopped there (the confidence stop), in words

    @property
    def from_model(self) -> bool:
        return self.kind in ("correction", "bonus")


def _source(rule: str, nxt: dict[str, Any]) -> str:
    """Where the evaluation model's token was drawn from: as logged, else what the rule implies ("" unknown)."""
    if isinstance(nxt.get("source"), str):
        return str(nxt["source"])
    if rule == "greedy":
        return "argmax"
    if nxt.get("kind") == "bonus" or rule == "typical":
        return "p" if rule else ""
    return "residual" if rule in ("sampling", "threshold") else ""


def copied_words(n: int) -> str:
    """What a copied draft's hover and words say (the timeline, describe_step): "" for the model's own."""
    return f"copied: the last {n} tokens occurred earlier, and this followed them" if n else ""


def stop_words(trace: Trace, k: int) -> str:
    """Why step k's chain drafted no more after its last draft, where the confidence stop says so: that
    draft is the model's own (not a copy) and its own q (before temperature) is below
    meta.gamma_policy.confidence. "" otherwise (a tree, no stop set, a copy, or a q at or above it)."""
    step = trace["steps"][k]
    bar = (trace.get("meta", {}).get("gamma_policy") or {}).get("confidence")
    if not bar or not step["draft"] or step.get("tree"):
        return ""
    last = step["draft"][-1]
    own = last.get("q_raw", last.get("q"))
    if last.get("copied") or own is None or float(own) >= float(bar):
        return ""
    warped = last.get("q")
    # the q the rule read is after temperature: say both, or a student sees two values for one token
    after = (
        f"; the rule's q, after temperature, is {float(warped):.3f}" if warped is not None and "q_raw" in last else ""
    )
    return (
        f"drafting stopped after this draft: the draft model's own q = {float(own):.3f} (before temperature{after}) "
        f"is below {float(bar):g}, the stop below q"
    )


def draft_outcome(accepted: bool | None) -> Kind:
    return "unevaluated" if accepted is None else ("accepted" if accepted else "rejected")


def _test_words(rule: str, params: dict[str, Any], v: dict[str, Any], q: float | None = None) -> str:
    acc = v.get("accepted")
    if acc is None:
        return "scored in the same pass, but never tested: an earlier draft was rejected"
    if rule == "sampling":
        a, r = v.get("accept_prob"), v.get("r")
        if a is None and r is not None and v.get("p") is not None and q:
            a = min(1.0, v["p"] / q)
        if a is None or r is None:
            return "accepted" if acc else "rejected"
        return f"r = {r:.3f} {'<' if acc else '≥'} min(1, p/q) = {a:.3f}"
    if rule == "threshold":
        ratio = v.get("ratio")
        if ratio is None and v.get("p") is not None and q:
            ratio = v["p"] / q
        tau = params.get("tau")
        return f"p/q = {fmt_num(ratio)} {'≥' if acc else '<'} τ = {tau}"
    if rule == "typical":
        return f"p = {fmt_num(v.get('p'))} {'>' if acc else '≤'} cutoff = {fmt_num(v.get('cutoff'))}"
    if rule != "greedy":  # the trace does not name its rule: say what was decided, and r if logged
        r = v.get("r")
        return ("accepted" if acc else "rejected") + (f" (r = {r:.3f})" if r is not None else "")
    top = v.get("top") or []
    if acc:
        return "the evaluation model's argmax"
    best = f" ('{visible(top[0]['token'])}', p = {top[0]['prob']:.3f})" if top else ""
    return f"not the evaluation model's argmax{best}"


def step_cells(trace: Trace, k: int) -> list[Cell]:
    """The drafted tokens of step k, then the evaluation model's token (if the step has one)."""
    step = trace["steps"][k]
    rule, params = rule_of(trace)
    last, stopped = len(step["draft"]) - 1, stop_words(trace, k)
    cells = [
        Cell(
            k,
            j,
            draft_outcome(v.get("accepted")),
            d["token"],
            d["token_id"],
            v.get("p"),
            d.get("q"),
            _test_words(rule, params, v, d.get("q")),
            v.get("p_raw"),
            d.get("q_raw"),
            int(d.get("copied") or 0),
            stopped if j == last else "",
        )
        for j, (d, v) in enumerate(zip(step["draft"], step["verify"], strict=True))
    ]
    nxt = step.get("next")
    if nxt is not None:
        source = {"residual": "norm(max(0, p − q))", "p": "p", "argmax": "argmax p"}.get(_source(rule, nxt), "")
        how = f"drawn from {source}" if source else "drawn by the evaluation model"
        prob = nxt.get("prob")
        chance = f"with probability {prob:.3f}" if prob is not None else "(its probability is not logged)"
        cells.append(
            Cell(
                k,
                step["n_accepted"],
                nxt["kind"],
                nxt["token"],
                nxt["token_id"],
                prob,
                None,
                f"{how} {chance}",
                nxt.get("p_raw"),
            )
        )
    return cells


# ---------------------------------------------------------------- provenance of the output


@dataclass(frozen=True)
class OutTok:
    """One token of the output, with where it came from."""

    token: str
    token_id: int
    kind: Kind  # accepted | correction | bonus
    step: int
    raw: bytes = b""  # what it adds to the text (bytes: a character split over tokens joins up again)


def provenance(trace: Trace) -> list[OutTok]:
    """The output tokens in order with their provenance, cut at EOS and the budget like the output."""
    meta = trace.get("meta", {})
    eos = set(meta.get("eos_token_ids") or [])
    budget = meta.get("max_new_tokens") or math.inf
    out: list[OutTok] = []
    for step in trace["steps"]:
        toks = [
            OutTok(d["token"], d["token_id"], "accepted", step["index"], token_bytes(d))
            for d in step["draft"][: step["n_accepted"]]
        ]
        nxt = step.get("next")
        if nxt is not None:
            toks.append(OutTok(nxt["token"], nxt["token_id"], nxt["kind"], step["index"], token_bytes(nxt)))
        for t in toks:
            if len(out) >= budget:
                return out
            out.append(t)
            if t.token_id in eos:
                return out
    return out


# ---------------------------------------------------------------- the step in words


def describe_step(trace: Trace, k: int) -> list[str]:
    """The verification of step k in sentences, one per draft position (plain text, not markdown)."""
    rule, _ = rule_of(trace)
    cells = [c for c in step_cells(trace, k) if not c.from_model]
    g = len(cells)
    if g == 0:
        return [f"Nothing was drafted this step: {no_draft_reason(trace['steps'][k])}."]
    test = {
        "sampling": "accepted when the uniform draw r falls below min(1, p/q)",
        "threshold": "accepted when p/q reaches τ (lossy)",
        "typical": "accepted when p exceeds min(ε, δ·exp(−H(p))) (lossy)",
        "greedy": "accepted when it is the evaluation model's argmax",
    }.get(rule)
    how = (
        f"Rule '{rule}': a draft is {test}."
        if test
        else "The trace does not name the rule; the decisions are as logged."
    )
    if rule == "greedy":
        how += (
            " At temperature 0 both models' distributions are one-hot, so q = 1.000 for every draft (it is the "
            "draft's argmax, or a copy from earlier text) and p is 1.000 or 0.000; there is no random draw and no residual: after a rejection "
            "the evaluation model's token is simply its argmax."
        )
    tree = trace["steps"][k].get("tree")
    copies = sum(bool(nd.get("copied")) for nd in tree["nodes"]) if tree else 0
    of_them = "it" if g == 1 else "all of them"
    lines = [
        f"The draft proposed {g} token{'s' if g != 1 else ''}; the evaluation model scored {of_them} in one "
        f"forward pass. {how}"
        if not tree
        else f"The draft proposed a tree of {len(tree['nodes'])} candidates"
        + (f" ({copies} of them copied from earlier text)" if copies else "")
        + f" (drawn below, with its attention mask); the evaluation model scored all of them in one forward pass. "
        f"Here is the line the rule walked. {how}"
    ]
    for c in cells:
        lines.append(
            f"Draft {c.position + 1} '{visible(c.token)}'{f' ({copied_words(c.copied)})' if c.copied else ''}: q = {fmt_num(c.q)}, p = {fmt_num(c.p)}; "
            f"{c.test} → {LABELS[c.kind]}."
            + (f" Then {c.stopped}, so the step asked for no more drafts." if c.stopped else "")
        )
    if tree:
        lines += _siblings_tested(trace["steps"][k], rule)
    return lines


def _siblings_tested(step: dict[str, Any], rule: str) -> list[str]:
    """A tree step's nodes the rule tested off the line above (a sibling tried where a node was rejected),
    one sentence each, with the numbers the tree's hover gives: the tree counts them among those it tested,
    so the words name them too."""
    tree = step["tree"]
    # the main line's nodes as the decoder recorded them; a trace without `main`: matched by depth and token
    main = set(tree.get("main") or [])
    line = {(j + 1, d["token_id"]) for j, d in enumerate(step["draft"])}
    out = []
    for j, nd in enumerate(tree["nodes"]):
        on_line = j in main if main else (nd["depth"], nd["token_id"]) in line
        if nd.get("accepted") is None or on_line:
            continue
        if rule == "greedy":  # its warped q is 0 (not the draft's argmax): only p decides
            test = (
                f"p = {fmt_num(nd.get('p'))}, "
                + ("the" if nd["accepted"] else "not the")
                + " evaluation model's argmax"
            )
        else:
            test = f"q = {fmt_num(nd.get('q'))}, p = {fmt_num(nd.get('p'))}"
            if nd.get("p_test") is not None:  # recursive rejection: tested against what earlier siblings left
                test += f"; after the earlier siblings p′ = {fmt_num(nd['p_test'])}, q′ = {fmt_num(nd['q_test'])}"
            if nd.get("accept_prob") is not None:
                ratio = "p′/q′" if nd.get("p_test") is not None else "p/q"
                test += f"; r = {fmt_num(nd.get('r'))} against min(1, {ratio}) = {fmt_num(nd['accept_prob'])}"
            for key, name in (("ratio", "p/q"), ("cutoff", "cutoff")):  # the lossy rules' numbers
                if nd.get(key) is not None:
                    test += f"; {name} = {fmt_num(nd[key])}"
        copied = " (copied from earlier text)" if nd.get("copied") else ""
        out.append(
            f"Also tested at depth {nd['depth']}, a sibling off the line above: '{visible(nd['token'])}'{copied}: "
            f"{test} → {LABELS[draft_outcome(nd['accepted'])]} (the tree below shows where it hangs)."
        )
    return out


def describe_next(trace: Trace, k: int) -> str:
    """n_accepted and the post-acceptance token, in the course's words."""
    step = trace["steps"][k]
    n, g = step["n_accepted"], len(step["draft"])
    nxt = step.get("next")
    drafts = "draft" if n == 1 else "drafts"
    ctx = step.get("context_length")
    at = f"i+{n + 1}" + (f" (i = {ctx}: the tokens before this step)" if isinstance(ctx, int) else "")
    if "next" not in step:
        after = "every draft passed, so it adds a bonus token" if n == g else "it replaces the rejected draft"
        return (
            f"n_accepted = {n}: {n} {drafts} accepted. The evaluation model then generates the token at position "
            f"{at} itself ({after}), but this trace does not record which token that was."
        )
    if nxt is None:
        return (
            f"n_accepted = {n}: {n} {drafts} accepted, and the last of them ends the text (end-of-sequence), "
            "so the evaluation model adds nothing."
        )
    prob = nxt.get("prob")
    tok = f"'{visible(nxt['token'])}'" + (f" (probability {prob:.3f})" if prob is not None else "")
    if nxt["kind"] == "bonus":
        src = "argmax of its p" if nxt.get("source") == "argmax" else "its own distribution p"
        if g == 0:
            return (
                f"n_accepted = 0: nothing was drafted, so the evaluation model generates the token at position {at} "
                f"itself, from {src}: {tok}."
            )
        every = f"all {g} drafts" if g > 1 else "the only draft"
        return (
            f"n_accepted = {n}: {every} accepted, so the evaluation model generates a bonus token at "
            f"position {at}, from {src} at that position (already computed in the same pass): {tok}."
        )
    src = {
        "residual": "norm(max(0, p − q))",
        "p": "its own p (this rule never looked at q)",
        "argmax": "the argmax of p",
    }.get(_source(rule_of(trace)[0], nxt), "its own distribution (the trace does not say which)")
    # a tree may reject several children of the path's end: every one of them is replaced (a sibling rejected
    # higher up, before the path went on through another, is not at that depth)
    tree = step.get("tree")
    end = tree["path"][-1] if tree and tree["path"] else -1
    rejected = sum(nd.get("accepted") is False and nd["parent"] == end for nd in tree["nodes"]) if tree else 1
    replaced = "the rejected draft" if rejected <= 1 else f"the {rejected} rejected drafts at that depth"
    return (
        f"n_accepted = {n}: {n} {drafts} accepted, so the evaluation model now generates the token at position "
        f"{at}, from {src}: {tok}. It replaces {replaced}; the drafts after it are discarded."
    )
