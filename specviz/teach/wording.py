"""How the exercises quote what a trace holds: a token ⟨␣the⟩, a stretch of text “…␣the␣cat”, integer
options in order, a step's drafts and decisions, the context before a step.

Imports: specviz.figures (visible), specviz.trace.
"""

from __future__ import annotations

import random

from specviz.figures import visible
from specviz.trace import Step, Trace

__all__ = [
    "context_tail",
    "numeric_options",
    "position_word",
    "quote_text",
    "quote_token",
    "quote_tokens",
    "step_decisions",
    "step_drafts",
]


def quote_token(text: str) -> str:
    """A token as the questions quote it: ⟨␣the⟩, so quotes and commas inside tokens stay readable."""
    return f"⟨{visible(text)}⟩"


def quote_text(text: str) -> str:
    """A stretch of (already visible) text as the questions quote it: “…␣sunlight␣reaches”."""
    return f"“{text}”"


def quote_tokens(texts: list[str]) -> str:
    return " ".join(quote_token(t) for t in texts) if texts else "(nothing)"


def numeric_options(rng: random.Random, right: int, candidates: list[int]) -> tuple[tuple[str, ...], int]:
    """Integer options in increasing order (easier to read than shuffled numbers)."""
    wrong = [c for c in dict.fromkeys(candidates) if c != right and c >= 0]
    picked = sorted([right, *rng.sample(wrong, min(3, len(wrong)))])
    return tuple(str(x) for x in picked), picked.index(right)


def step_decisions(step: Step) -> list[str]:
    return [
        "Not tested" if v["accepted"] is None else "Accepted" if v["accepted"] else "Rejected" for v in step["verify"]
    ]


def step_drafts(step: Step) -> list[str]:
    return [d["token"] for d in step["draft"]]


def context_tail(trace: Trace, k: int, n: int = 6) -> str:
    """The last n tokens before step k, visible and quoted; the prompt's end when the output is shorter."""
    toks: list[str] = []
    for s in trace["steps"][:k]:
        toks += [d["token"] for d in s["draft"][: s["n_accepted"]]]
        if s.get("next") is not None:
            toks.append(s["next"]["token"])  # type: ignore[index]
    tail = "".join(visible(t) for t in toks[-n:])
    if len(toks) >= n:
        return quote_text("…" + tail)
    if trace.get("meta", {}).get("chat"):
        # the model saw the prompt inside the chat template: the answer starts after the template's header
        return quote_text("[start of the answer]" + tail)
    return quote_text("…" + visible(str(trace.get("prompt", {}).get("text", ""))[-30:]) + tail)


def position_word(i: int) -> str:
    return f"i+{i}" if i else "i"
