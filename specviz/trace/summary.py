"""Summaries of a trace: acceptance, tokens per step, per-position and per-depth statistics."""

from __future__ import annotations

from collections import Counter
from typing import Any

from specviz.trace.schema import Step, Trace, finish

# ---------------------------------------------------------------- summaries


def _decided(step: Step, eos: set[int]) -> int:
    """How many of a step's drafts count in statistics: all of them, unless an accepted draft was an
    end-of-sequence token — the drafts after it never reached the output, whatever the rule said."""
    for j, d in enumerate(step["draft"][: step["n_accepted"]]):
        if d["token_id"] in eos:
            return j + 1
    return len(step["draft"])


def summarize(trace: Trace) -> dict[str, Any]:
    """Acceptance rate, accepted lengths, tokens per step, per-position acceptance, time split.

    Only drafts that could reach the output count: after an accepted end-of-sequence draft, the
    rest of the step's drafts are left out, so mean accepted never exceeds tokens per step.
    A rate with nothing to count (no drafts, no decisions) is None, never 0: `undefined_words`
    says why in words. Expects a trace that validate() accepts.
    """
    steps = trace["steps"]
    eos = set(trace.get("meta", {}).get("eos_token_ids") or [])
    decided = [_decided(s, eos) for s in steps]  # drafts per step that count (none after an accepted EOS)
    gamma = max((len(s["draft"]) for s in steps), default=0)
    drafted = sum(decided)
    accepted = sum(min(s["n_accepted"], k) for s, k in zip(steps, decided, strict=True))
    rejections = sum(1 for s, k in zip(steps, decided, strict=True) if s["n_accepted"] < k)
    out = trace.get("output") or finish(dict(trace), "stopped")["output"]  # type: ignore[arg-type]
    per_pos = []
    for j in range(gamma):
        seen = [
            s["verify"][j]["accepted"]
            for s, k in zip(steps, decided, strict=True)
            if j < min(len(s["verify"]), k) and s["verify"][j]["accepted"] is not None
        ]
        per_pos.append(sum(seen) / len(seen) if seen else None)
    draft_ms = sum(s.get("timing_ms", {}).get("draft", 0.0) for s in steps if s.get("timing_ms"))
    verify_ms = sum(s.get("timing_ms", {}).get("verify", 0.0) for s in steps if s.get("timing_ms"))
    n_steps = len(steps)
    with_draft = sum(1 for s in steps if s["draft"])
    return {
        "steps": n_steps,
        "tokens": len(out["token_ids"]),
        "tokens_per_step": len(out["token_ids"]) / n_steps if n_steps else 0.0,
        "drafted": drafted,
        "accepted": accepted,
        # share of drafted tokens that ended up in the output; None (undefined, not 0) with no drafts
        "acceptance_rate": accepted / drafted if drafted else None,
        # per-decision acceptance probability: accepted / (accepted + rejections); the α of the theory
        "alpha": accepted / (accepted + rejections) if accepted + rejections else None,
        "rejections": rejections,
        # one rule: steps that drafted nothing made no acceptance decision and are left out of
        # mean accepted, the accepted-length histogram and per-position acceptance
        "mean_accepted": accepted / with_draft if with_draft else None,
        "steps_without_draft": n_steps - with_draft,
        "no_draft_reasons": dict(Counter(s.get("no_draft", "unrecorded") for s in steps if not s["draft"])),
        "accepted_length_counts": [
            sum(1 for s, k in zip(steps, decided, strict=True) if s["draft"] and min(s["n_accepted"], k) == n)
            for n in range(gamma + 1)
        ],
        "per_position_acceptance": per_pos,
        "draft_ms": draft_ms,
        "verify_ms": verify_ms,
        "draft_share": draft_ms / (draft_ms + verify_ms) if draft_ms + verify_ms else None,
        "stop_reason": out.get("stop_reason"),
    }
