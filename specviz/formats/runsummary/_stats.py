"""What a run summary gives: the statistics specviz.trace.summarize would, and plain words for them."""

from __future__ import annotations

from typing import Any

from specviz.formats.runsummary._common import (
    SRC_SGLANG,
    SRC_TRT,
    SRC_TRT_AVG,
    SRC_VLLM_LOG,
    SRC_VLLM_PROM,
    SRC_VLLM_RESPONSE,
    SRC_VLLM_V0_LOG,
    RunSummary,
)

# what "mean acceptance length" means for each source (describe() and the docs say it in words)
MAL_DEFINITION = {
    SRC_VLLM_LOG: "1 + accepted / drafts: tokens per verification step, the bonus token included",
    SRC_VLLM_V0_LOG: "emitted tokens / drafts (= 1 + accepted prefix / drafts): the bonus token included",
    SRC_VLLM_PROM: "1 + accepted / drafts: tokens per verification step, the bonus token included",
    SRC_VLLM_RESPONSE: "1 + accepted / verification steps, the bonus token included",
    SRC_SGLANG: "completion tokens / verification steps (SGLang's spec_accept_length): includes the bonus "
    "token and the first token, which came from the prefill",
    SRC_TRT: "1 + accepted / verification steps, the bonus token included",
    SRC_TRT_AVG: "TensorRT-LLM's avg_decoded_tokens_per_iter: decoded tokens per iteration (unweighted mean "
    "over choices)",
}


def summary_stats(rs: RunSummary) -> dict[str, Any]:
    """The statistics of `specviz.trace.summarize` that a run summary can give; None where undefined.

    acceptance_rate = accepted / drafted tokens; mean_accepted = accepted per drafting step (from
    the draft count, or from vLLM's and TensorRT-LLM's mean acceptance length, which is defined as
    1 + accepted / drafts); tokens_per_step = the engine's mean acceptance length, else output
    tokens / steps. Nothing drafted gives None, never 0.
    """
    drafted, accepted = rs["draft_tokens"], rs["accepted_tokens"]
    drafts, steps, tokens, mal = rs["drafts"], rs["steps"], rs["output_tokens"], rs["mean_acceptance_length"]
    rate = accepted / drafted if drafted and accepted is not None else None
    if drafts and accepted is not None:
        mean_accepted = accepted / drafts
    elif mal is not None and rs["source"] in (SRC_VLLM_LOG, SRC_VLLM_PROM, SRC_VLLM_RESPONSE, SRC_TRT):
        mean_accepted = mal - 1.0
    else:
        mean_accepted = None
    per_step = mal if mal is not None else (tokens / steps if tokens is not None and steps else None)
    return {
        "steps": steps,
        "tokens": tokens,
        "tokens_per_step": per_step,
        "drafted": drafted,
        "accepted": accepted,
        "acceptance_rate": rate,
        "mean_accepted": mean_accepted,
        "mean_acceptance_length": mal,
        "drafts": drafts,
        "per_position_acceptance": rs["per_position_acceptance"],
        "accepted_length_counts": rs["accepted_length_counts"],
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def describe(rs: RunSummary) -> list[str]:
    """Plain-word lines for the CLI and the pages: what was read, what each number means, what is missing."""
    st = summary_stats(rs)
    out = [
        f"{rs['name']}: {rs['source']} ({rs['engine']}), {rs['records']} record(s) read. A run summary: totals, not steps."
    ]
    if st["drafted"] is None:
        out.append("Drafted and accepted tokens: not given.")
    else:
        line = f"Drafted tokens: {st['drafted']:,}; accepted: {st['accepted']:,}"
        line += (
            f" (acceptance rate = accepted / drafted = {_pct(st['acceptance_rate'])})."
            if st["acceptance_rate"] is not None
            else " (nothing drafted: no acceptance rate)."
        )
        out.append(line)
    if st["drafts"] is not None:
        out.append(f"Drafting steps (verification passes that checked a draft): {st['drafts']:,}.")
    if st["mean_accepted"] is not None:
        out.append(f"Accepted drafts per drafting step: {st['mean_accepted']:.3f}.")
    if st["mean_acceptance_length"] is not None:
        words = MAL_DEFINITION.get(rs["source"], "as the engine defines it")
        out.append(f"Mean acceptance length: {st['mean_acceptance_length']:.3f} ({words}).")
    if st["tokens"] is not None:
        out.append(f"Output tokens: {st['tokens']:,}.")
    per_pos = st["per_position_acceptance"]
    if per_pos:
        shown = ", ".join(f"{j + 1}: {_pct(p)}" for j, p in enumerate(per_pos[:16]))
        more = f", … ({len(per_pos)} positions)" if len(per_pos) > 16 else ""
        out.append(f"Acceptance by draft position (share of drafting steps that accepted it): {shown}{more}.")
    hist = st["accepted_length_counts"]
    if hist:
        shown = ", ".join(f"{j}: {c:,}" for j, c in enumerate(hist[:17]))
        out.append(f"Steps by number of drafts accepted: {shown}{', …' if len(hist) > 17 else ''}.")
    if rs["timings"]:
        out.append("Timings: " + ", ".join(f"{k} = {v:,.2f}" for k, v in rs["timings"].items()) + ".")
    out.extend(f"Missing: {m}." for m in rs["missing"])
    return out
