"""What `python -m specviz bench` prints: its result dict as a table and a few lines of verdicts."""

from __future__ import annotations

from typing import Any

from specviz.core.theory import needed_text
from specviz.trace import rate
from specviz.trace.parting import IDENTICAL, NEAR_TIE, NOT_RECORDED, PARTED

__all__ = ["print_table"]


def _policy_text(meta: dict[str, Any] | None) -> str:
    if meta is None:
        return ""
    conf = f", stop below q {meta['confidence']}" if meta["confidence"] is not None else ""
    return f" ({meta['name']} schedule{conf})"


def print_table(r: dict[str, Any]) -> None:
    """The benchmark's result (the dict `--json-out` writes) as the table and lines printed to stdout."""
    print(
        f"\n{r['target']} <- {r['draft']}, gamma {r['gamma']}{_policy_text(r['gamma_policy'])}, tree {r['tree']}, "
        f"{r['prompts']} prompts x {r['reps']} reps, "
        f"max {r['max_new_tokens']} new tokens, {r['device']}"
    )
    print(f"{'method':<22}{'tok/s (median)':>16}{'spread':>18}{'tokens/step':>13}{'acceptance':>12}")
    for name, v in r["tokens_per_s"].items():
        extra = (
            f"{r['tokens_per_step']:>13.2f}{rate(r['acceptance_rate'], '.1%'):>12}"
            if name == "specviz"
            else f"{'':>13}{'':>12}"
        )
        spread = f"{v['min']:.1f}-{v['max']:.1f}"
        print(f"{name:<22}{v['median']:>16.1f}{spread:>18}{extra}")
    print(f"speedup vs target-only: {r['speedup_vs_target']:.2f}x", end="")
    if r["hf_assisted_ratio"] is not None:
        print(f"; vs HF assisted ({r.get('hf_assisted_draft')}): {r['hf_assisted_ratio']:.2f}x", end="")
    for key, option in (
        ("compare_draft", "draft"),
        ("compare_tree", "tree"),
        ("compare_lookup", "lookup"),
        ("compare_confidence", "confidence"),
    ):  # a second specviz method
        if c := r.get(key):
            print(
                f"\nwith --compare-{option} {c[option]}: {c['speedup_vs_target']:.2f}x the target, "
                f"{c['tokens_per_step']:.2f} tokens/step, acceptance {rate(c['acceptance_rate'], '.1%')}",
                end="",
            )
    s = r["sampling_t0.7"]
    if s is not None:
        print(
            f"\nsampling at T=0.7: {s['tokens_per_step']:.2f} tokens/step, acceptance {rate(s['acceptance_rate'], '.1%')}"
        )
    else:
        st = r["settings"]
        print(f"\nsettings: rule {st['rule']}, T {st['temperature']}, seed {st['seed']}; baseline {st['baseline']}")
    if p := r.get("peer"):
        print(
            f"{p['name']}: {p['ratio_to_target']:.2f}x specviz's evaluation model alone; specviz speculative is "
            f"{p['speculative_vs_peer']:.2f}x it; same tokens as the model alone {p['same_tokens_as_target']} "
            "(its own 4-bit arithmetic)"
        )
    if r["identical_greedy_outputs"] is not None:
        hf = (
            " (HF assisted left out: its fused prefill rounds otherwise in fast numerics)"
            if r["numerics"].get("row_limit")
            else ""
        )
        print(f"identical greedy outputs across methods: {r['identical_greedy_outputs']}{hf}")
    n = r["numerics"]
    print(f"numerics: {n['mode']} ({n['dtype']}, rows computed {n['rows']}): {n['why']}")
    if c := r.get("contract"):
        print(
            f"against the evaluation model alone: {c[IDENTICAL]} identical, {c[NEAR_TIE]} parted at a near-tie, "
            f"{c[PARTED]} parted otherwise, {c[NOT_RECORDED]} not checkable"
        )
    if (sizing := r.get("tree_sizing")) and sizing.get("alpha_needed"):
        # a tree's α pools the candidates at each depth: only a chain's compares with the chain's need
        chain = next((c for c in (r, r.get("compare_tree")) if c and c.get("tree") == "chain"), None)
        mine = f"; the chain's α in this run: {rate(chain['alpha'], '.2f')}" if chain else ""
        print(f"this machine: {needed_text(sizing['alpha_needed'])}{mine}")
