"""What a minimal trace lacks, and what the pages cannot show because of it.

Traces may be minimal (an event-log import, another engine's log): q, p, r, top lists, timings
or the evaluation model's own token can be missing. Every figure draws what is there, and
`missing_parts` says what is not and what that costs, for the pages to tell the reader
(specviz.ui.traces.show_gaps; the browser player's gaps).
"""

from __future__ import annotations

from dataclasses import dataclass

from specviz.trace import Trace, rule_of

__all__ = ["Gap", "missing_parts"]


@dataclass(frozen=True)
class Gap:
    """Something a trace does not record, and what the pages cannot show because of it."""

    key: str  # q | p | r | top | next | timing | rule | prompt | token_ids
    what: str  # the missing data, in words
    missing: int  # how many places lack it
    of: int  # out of how many places that could have it
    consequence: str  # what the reader loses

    def sentence(self) -> str:
        share = "" if self.missing >= self.of else f" (in {self.missing} of {self.of})"
        return f"no {self.what}{share}: {self.consequence}"


def missing_parts(trace: Trace) -> list[Gap]:
    """What this trace does not record, most important first; [] for a complete trace.

    A part counts as missing where it is absent or null at a place that should have it: q for
    every draft, p and the top lists at every position, r wherever the sampling rule (or an
    unnamed one) made a decision, the evaluation model's token and the timings for every step.
    """
    steps = trace.get("steps") or []
    meta = trace.get("meta") or {}
    rule, _ = rule_of(trace)
    drafts = [(d, v) for s in steps for d, v in zip(s["draft"], s["verify"], strict=False)]
    decided = [v for _, v in drafts if v.get("accepted") is not None]
    nexts = [s["next"] for s in steps if s.get("next")]
    gaps: list[Gap] = []

    def add(key: str, what: str, missing: int, of: int, consequence: str) -> None:
        if missing > 0:
            gaps.append(Gap(key, what, missing, of, consequence))

    add(
        "q",
        "draft probabilities q",
        sum(d.get("q") is None for d, _ in drafts),
        len(drafts),
        "no q bars and no ratio p/q or min(1, p/q) in the acceptance diagram",
    )
    add(
        "p",
        "evaluation-model probabilities p",
        sum(v.get("p") is None for _, v in drafts),
        len(drafts),
        "no p bars in the acceptance diagram",
    )
    if rule in ("sampling", ""):
        add(
            "r",
            "random draws r",
            sum(v.get("r") is None for v in decided),
            len(decided),
            "the test r < min(1, p/q) cannot be shown, only its outcome",
        )
    tops = [x.get("top") for pair in drafts for x in pair] + [n.get("top") for n in nexts]
    add(
        "top",
        "top-k lists",
        sum(t is None for t in tops),
        len(tops),
        "no distributions panel (top tokens of p, q and the residual)",
    )
    add(
        "next",
        "evaluation-model tokens (correction or bonus)",
        sum("next" not in s for s in steps),
        len(steps),
        "the output lacks the tokens the evaluation model generated itself",
    )
    add(
        "timing",
        "step timings",
        sum(not s.get("timing_ms") for s in steps),
        len(steps),
        "no cost analysis (draft vs verify time, cost ratio c, ideal speedup)",
    )
    if not rule:
        add("rule", "acceptance rule", 1, 1, "decisions are shown as logged, not re-derived from p, q and r")
    prompt = trace.get("prompt") or {}
    if "token_ids" not in prompt or any("context_length" not in s for s in steps):
        add("prompt", "prompt tokens or context lengths", 1, 1, "the context length i of each step is unknown")
    source = meta.get("source")
    if isinstance(source, dict) and source.get("synthetic_token_ids") is True:
        add("token_ids", "token ids", 1, 1, "ids shown are numbered by distinct token text, not the model's ids")
    return gaps
