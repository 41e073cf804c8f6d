"""Where a greedy speculative run parts from the evaluation model alone, and whether the trace proves it a near-tie.

The numerics contract (specviz.models.numerics): in exact numerics greedy speculative output is
token-identical to the evaluation model alone; in fast numerics it is identical, or it parts only
where the evaluation model's two candidates were within the dtype's resolution of each other. A
greedy step records, at every position it emits, the evaluation model's own distribution there
(the `top_raw` list: the top-k of p before greedy warping), so the trace itself holds the proof:
at the first parting, the gap between the speculative run's token and the alone run's token,
ln p(x_spec) − ln p(x_alone) in nats, must be at most TOLERANCE_NATS[dtype].

Pure Python: a trace (a dict) and the alone run's token ids in, a Parting out.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["IDENTICAL", "NEAR_TIE", "NOT_RECORDED", "PARTED", "TOLERANCE_NATS", "Parting", "first_parting"]

IDENTICAL, NEAR_TIE, PARTED, NOT_RECORDED = "identical", "near-tie", "parted", "not recorded"

# How far rounding alone moves the gap between the evaluation model's two best tokens, in nats.
# bfloat16: 0.5, the largest shift measured on the embedded target between a one-row pass and fused
# 5- and 9-row passes over the same positions (4 prompts x 60 positions, docs/BENCHMARKS.md,
# 2026-12-05); float16 has 3 more mantissa bits (/8); float32 another 13 (a generous 1e-3).
TOLERANCE_NATS: dict[str, float] = {"bfloat16": 0.5, "float16": 0.0625, "float32": 1e-3}


@dataclass(frozen=True)
class Parting:
    """verdict: identical / near-tie / parted / not recorded; where and by how much when parted.

    position: index into the generated tokens; step: the step that emitted it; gap and tolerance in nats."""

    verdict: str
    position: int | None = None
    step: int | None = None
    token_id: int | None = None
    alone_token_id: int | None = None
    gap: float | None = None
    tolerance: float | None = None
    why: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def words(self) -> str:
        """One sentence for a student."""
        if self.verdict == IDENTICAL:
            return "Same output as the evaluation model alone, token for token."
        where = f"at token {self.position} (step {self.step})"
        if self.verdict == NEAR_TIE:
            return (
                f"Parted from the evaluation model alone {where}, where its two best tokens were within "
                f"{self.gap:.3f} nats of each other (rounding moves that gap by up to {self.tolerance} in "
                "this dtype): rounding, not the method."
            )
        if self.verdict == PARTED:
            return f"Parted from the evaluation model alone {where} and the trace cannot show a near-tie: {self.why}"
        return f"Cannot check against the evaluation model alone: {self.why}"


def _emitted(trace: dict[str, Any]) -> list[tuple[int, dict[str, Any] | None]]:
    """(step index, the entry whose top lists hold p there) for each generated token, in order."""
    out: list[tuple[int, dict[str, Any] | None]] = []
    for step in trace.get("steps", []):
        n = int(step.get("n_accepted", 0))
        verify = step.get("verify") or []
        for j in range(n):
            out.append((step.get("index", 0), verify[j] if j < len(verify) else None))
        if step.get("next") is not None:
            out.append((step.get("index", 0), step["next"]))
    return out


def _probs(entry: dict[str, Any] | None) -> dict[int, float] | None:
    """The evaluation model's unwarped top-k at this position (top_raw), or None when not recorded."""
    top = (entry or {}).get("top_raw")
    if not isinstance(top, list) or not top:
        return None
    return {int(e["token_id"]): float(e["prob"]) for e in top if isinstance(e, dict) and "token_id" in e}


def _greedy(meta: dict[str, Any]) -> bool:
    rule = (meta.get("rule") or {}).get("name")
    temp = (meta.get("sampling") or {}).get("temperature")
    return rule == "greedy" or temp == 0


def first_parting(trace: dict[str, Any], alone_ids: list[int]) -> Parting:
    """Compare a greedy trace's output with the evaluation model alone's (same prompt, same dtype).

    Only the tokens both runs generated are compared (one may stop earlier at max_new_tokens or
    EOS). Never raises on a malformed trace: a missing piece reads as "not recorded"."""
    meta = trace.get("meta") or {}
    ids = list((trace.get("output") or {}).get("token_ids") or [])
    if not _greedy(meta):
        return Parting(NOT_RECORDED, why="the run sampled; its contract is the distribution, not the tokens")
    diff = next((i for i, (a, b) in enumerate(zip(ids, alone_ids, strict=False)) if a != b), None)
    if diff is None:
        return Parting(IDENTICAL)
    dtype = str(meta.get("dtype") or "")
    tol = TOLERANCE_NATS.get(dtype)
    emitted = _emitted(trace)
    step, entry = emitted[diff] if diff < len(emitted) else (None, None)
    at = Parting(PARTED, diff, step, ids[diff], alone_ids[diff], tolerance=tol)
    probs = _probs(entry)
    if probs is None:
        return replace(at, verdict=NOT_RECORDED, why="the trace has no top_raw list at that position")
    mine, theirs = probs.get(ids[diff]), probs.get(alone_ids[diff])
    if not mine or not theirs:
        return replace(at, why="the alone run's token is not in the logged top-k there")
    gap = abs(math.log(mine) - math.log(theirs))
    if tol is None:
        return replace(at, gap=gap, why=f"no known resolution for dtype {dtype or '(not recorded)'}")
    if gap <= tol:
        return replace(at, verdict=NEAR_TIE, gap=gap)
    return replace(at, gap=gap, why=f"the gap {gap:.3f} nats is above {dtype}'s {tol}")
