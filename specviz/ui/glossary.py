"""The glossary and the maths: the Speedup lab's last section, and the entry each exercise opens
in a popover. Constants only, never trace text.

Imports no page module (see specviz/ui/__init__.py).
"""

from __future__ import annotations

import streamlit as st

__all__ = [
    "glossary",
    "glossary_entry",
]


GLOSSARY_TITLES: dict[str, str] = {
    "speculative-decoding-step": "a speculative decoding step",
    "draft-model": "draft model",
    "evaluation-model": "evaluation model",
    "gamma": "γ (draft length)",
    "acceptance-rule": "acceptance rule",
    "consecutively-accepted-tokens": "consecutively accepted tokens",
    "post-acceptance-token": "post-acceptance token",
    "residual-distribution": "residual distribution",
    "bonus-token": "bonus token",
    "lossless": "lossless and lossy",
    "numerics": "exact and fast numerics",
    "alpha-and-drafts-kept": "α (per-test acceptance) and drafts kept",
    "expected-tokens-per-step": "expected tokens per step",
    "expected-speedup": "expected speedup and the cost ratio c",
    "draft-tree": "draft tree and tree attention",
}

_GLOSSARY: dict[str, tuple[str, str | None]] = {
    "speculative-decoding-step": (
        "One step: the draft proposes γ tokens; the evaluation model scores them all in one forward pass; the drafts "
        "are tested left to right until the first rejection; the evaluation model adds one token of its own; the "
        "accepted drafts and that token are appended. Between 1 and γ + 1 tokens per evaluation pass.",
        None,
    ),
    "draft-model": (
        "The small, fast model (or prompt lookup) that proposes tokens, with probabilities **q**. Also: drafter, "
        "assistant model, approximation model, proposer.",
        r"q(x \mid \text{prefix})",
    ),
    "evaluation-model": (
        "The large model whose output we want, with probabilities **p**. Also: target model, verifier, main model, "
        "the oracle.",
        r"p(x \mid \text{prefix})",
    ),
    "gamma": (
        "γ, the number of drafts per step. Also: K, lookahead, draft length, num_assistant_tokens (transformers). "
        "An adaptive policy changes it as it goes: +2 after a fully accepted step, −1 otherwise.",
        None,
    ),
    "acceptance-rule": (
        "How a draft x is judged. Speculative sampling accepts when a uniform draw r falls below min(1, p/q); "
        "greedy accepts the evaluation model's argmax; threshold accepts p/q ≥ τ; typical accepts p above a cutoff.",
        r"\text{accept } x \iff r < \min\!\left(1, \frac{p(x)}{q(x)}\right),\quad r \sim U[0, 1)",
    ),
    "consecutively-accepted-tokens": (
        "n_accepted: the number of drafts accepted in a row from the first one. The first rejection ends the run; "
        "later drafts are discarded even if they would pass.",
        r"n = \min\{\, j : \text{draft } j+1 \text{ rejected} \,\} \le \gamma",
    ),
    "post-acceptance-token": (
        "The token the evaluation model generates itself at position i + n + 1, right after the accepted drafts: a "
        "correction after a rejection, or a bonus token when all γ drafts passed. Every step makes one.",
        None,
    ),
    "residual-distribution": (
        "After a rejection the correction is drawn from the residual: where p exceeds q, renormalised. This is what "
        "makes speculative sampling produce exactly p overall.",
        r"p'(x) = \frac{\max(0,\, p(x) - q(x))}{\sum_{x'} \max(0,\, p(x') - q(x'))}",
    ),
    "bonus-token": (
        "When every draft is accepted, the pass has already computed p at position i + γ + 1: one more token is drawn "
        "from it for free.",
        r"x_{\gamma+1} \sim p(\cdot \mid \text{prefix}, x_1, \dots, x_\gamma)",
    ),
    "lossless": (
        "A rule is lossless when the output follows the evaluation model's distribution exactly (sampling; greedy at "
        "T = 0). Threshold and typical are lossy: faster, but the text changes — the “fast but wrong” regression.",
        None,
    ),
    "alpha-and-drafts-kept": (
        "Two different shares, both called “acceptance rate” elsewhere. **α (per-test acceptance)** = accepted ÷ "
        "tested drafts: the chance that one draft passes the rule's test — the α of the formulas below. **Drafts "
        "kept** = accepted ÷ drafted: the share of all drafted tokens that reached the output. Drafts after the "
        "first rejection are drafted but never tested, so drafts kept is always at most α (19% kept with α = 0.42 "
        "is normal when γ is long). vLLM's “draft acceptance rate” is drafts kept.",
        r"\alpha = \frac{\text{accepted}}{\text{accepted} + \text{rejected}} \qquad "
        r"\text{drafts kept} = \frac{\text{accepted}}{\text{drafted}}",
    ),
    "numerics": (
        "How the numbers are computed, apart from the rule. **Exact** (float32): greedy speculative output is the "
        "evaluation model alone's, token for token, always. **Fast** (bfloat16, chosen by `--dtype auto` where this "
        "machine computes it faster): specviz computes every verified position as a one-token pass would, so the "
        "output stays identical; where a run still parts from the model alone, the trace shows the evaluation "
        "model's two best tokens there within the dtype's rounding (a **near-tie**, 0.5 nats in bfloat16) — "
        "rounding, not the method. A parting without a near-tie would be a bug. The trace records which (meta.numerics).",
        None,
    ),
    "expected-tokens-per-step": (
        "If each draft is accepted independently with probability α, a step yields on average",
        r"E[\text{tokens per step}] = \sum_{j=0}^{\gamma} \alpha^j = \frac{1-\alpha^{\gamma+1}}{1-\alpha}",
    ),
    "expected-speedup": (
        "With c the time of one draft token as a share of one evaluation pass, a step costs γc + 1 passes, so against "
        "the evaluation model alone (one token per pass). The best γ maximises it.",
        r"\text{speedup} = \frac{1-\alpha^{\gamma+1}}{(1-\alpha)(\gamma c+1)}",
    ),
    "draft-tree": (
        "Instead of one line of γ drafts, the draft proposes several candidates per depth: a tree of nodes, each with "
        "a parent. One pass of the evaluation model scores every node; the **tree attention mask** lets each node see "
        "the context and its own ancestors only, so each branch is scored as if it were alone. Verification walks down "
        "from the root: at each node its children are tested in turn, the first accepted one continues the path, and "
        "when all are rejected the evaluation model draws its own token. Under speculative sampling a sibling tried "
        "after a rejection is tested against the residual, with q losing the rejected token (SpecInfer, multi-round "
        "speculative sampling), which keeps the output exactly p.",
        r"\text{node } j \text{ attends to } i \iff i \in \text{context} \cup \text{ancestors}(j) \cup \{j\}",
    ),
}


def glossary() -> None:
    st.header("Glossary and the maths", anchor="glossary")
    st.caption("The textbook's words, with the synonyms used elsewhere. Every exercise links to its entry here.")
    for anchor in GLOSSARY_TITLES:
        title = GLOSSARY_TITLES[anchor]  # "γ (draft length)" keeps its lower-case γ: Γ is another symbol
        st.subheader(title[:1].upper() + title[1:] if title[:1].isascii() else title, anchor=anchor)
        glossary_entry(anchor)


def glossary_entry(anchor: str) -> None:
    """One entry's words and formula (constants, never trace text)."""
    text, formula = _GLOSSARY[anchor]
    st.markdown(text)
    if formula:
        st.latex(formula)
