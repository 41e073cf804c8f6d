"""A/B of the exact-rows attention in one process, in turns (issue 20): a Python file defining another
`rows_attention` (e.g. an earlier commit's specviz/models/rows.py, its last line, the registration, removed)
against today's, on the embedded pair in fast numerics: (1) one evaluation pass (one token, a chain's 3
positions, a 4-node tree's 5) after 60, 160 and 300 tokens of context, median ms; (2) greedy decoding, chain
and tree at the defaults (γ 4, the stop, the copy), the held-out prompts, tokens per second. Each attention is self-consistent (verification equals
the model alone under it), but the two round differently, so their tokens may part at a near-tie.

    .venv/bin/python scripts/rows_ab.py OLD_ROWS.py [--prompts 3] [--tokens 128] [--json-out FILE]

Run alone on the machine. The evaluation model alone runs through the same attention, so it is timed
with each too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transformers import AttentionInterface

from specviz.core.decoder import DEFAULT_CONFIDENCE, build_config, speculative_decode, target_decode
from specviz.core.tree import TreeShape, tree_mask, tree_positions
from specviz.core.warp import Sampling
from specviz.drafters.factory import make_drafter
from specviz.drafters.pair import load_pair
from specviz.models import rows
from specviz.trace.schema import output_ids


def pass_ab(target, variants: dict, reps: int = 12) -> dict[str, dict[str, float]]:
    """Median ms of one pass per (context, set-up, variant), the variants and set-ups in turns."""
    base = target.encode("Explain why the sky is blue in two sentences. Then say what makes sunsets red, in detail.")
    parents = [-1, -1, 0, 1]  # a tree of 4 nodes: two children of the root, one child each
    out = {}
    for ctx in (60, 160, 300):
        ids = (base * (ctx // len(base) + 1))[:ctx]
        cache = target.new_cache()
        target.forward(cache, ids, last=1)

        def chain(k: int, cache=cache, ctx=ctx) -> None:
            target.forward(cache, [28] * k, last=k)
            target.rollback(cache, ctx)

        def tree(cache=cache, ctx=ctx) -> None:
            nodes = [28, 253, 1035, 314, 2066]
            target.forward_tree(cache, nodes, tree_positions(parents, ctx, 1), tree_mask(parents, ctx, 1))
            target.rollback(cache, ctx)

        setups = {"one token": lambda: chain(1), "chain of 3": lambda: chain(3), "tree of 5": tree}
        times: dict[tuple[str, str], list[float]] = {(s, v): [] for s in setups for v in variants}
        for _ in range(reps):
            for s, run in setups.items():
                for v, fn in variants.items():
                    AttentionInterface.register(rows.ROWS_ATTENTION, fn)
                    t0 = time.perf_counter()
                    run()
                    times[(s, v)].append((time.perf_counter() - t0) * 1e3)
        for s in setups:
            before, after = (statistics.median(times[(s, v)][2:]) for v in variants)
            out[f"{s}, context {ctx}"] = {"before": round(before, 2), "after": round(after, 2)}
            print(
                f"context {ctx:3d} {s:<11} before {before:6.1f} ms   after {after:6.1f} ms   {before / after:.2f}x faster"
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location("old_rows", a.old)
    old = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(old)  # type: ignore[union-attr]
    variants = {"before": old.rows_attention, "after": rows.rows_attention}
    target, draft = load_pair()
    assert target.rows, "needs fast numerics with exact rows (a CPU with bf16 units)"
    prompts = [
        p for p in (Path(__file__).resolve().parent.parent / "assets/prompts/eval.txt").read_text().splitlines() if p
    ]
    # the defaults (γ 4, the stop below q 0.4; make_drafter copies below 0.7), as a chain and as the tree 2,1,1
    at = dict(gamma=4, rule="greedy", temperature=0.0, max_new_tokens=a.tokens, confidence=DEFAULT_CONFIDENCE)
    setups = {
        "alone": None,
        "chain γ4 (defaults)": build_config(**at),
        "tree 2,1,1": build_config(**at, tree=TreeShape.parse("2,1,1")),
    }
    passes = pass_ab(target, variants)
    rates: dict[str, dict[str, list[float]]] = {s: {v: [] for v in variants} for s in setups}
    same = True
    for i, text in enumerate(prompts[: a.prompts + 1]):
        ids = target.encode(text)
        for name, cfg in setups.items():
            out = {}
            for variant, fn in variants.items():
                AttentionInterface.register(rows.ROWS_ATTENTION, fn)
                t0 = time.perf_counter()
                if cfg is None:
                    toks = list(target_decode(target, ids, Sampling(0), a.tokens))
                else:
                    steps = speculative_decode(target, make_drafter(target, draft), ids, cfg)
                    toks = output_ids(steps, target.eos_token_ids, a.tokens)
                dt = time.perf_counter() - t0
                out[variant] = toks
                if i:  # the first prompt warms up
                    rates[name][variant].append(len(toks) / dt)
            same &= out["before"] == out["after"]
    AttentionInterface.register(rows.ROWS_ATTENTION, rows.rows_attention)
    result = {}
    for name, per in rates.items():
        med = {v: statistics.median(r) for v, r in per.items()}
        result[name] = {
            **{f"{v}_tok_s": round(m, 2) for v, m in med.items()},
            "after_over_before": round(med["after"] / med["before"], 3),
        }
        print(
            f"{name:<20} before {med['before']:6.1f} tok/s   after {med['after']:6.1f} tok/s   {med['after'] / med['before']:.2f}x"
        )
    print("same tokens before and after (may part at a near-tie: the two round differently):", same)
    if a.json_out:
        a.json_out.write_text(
            json.dumps(
                {"passes_ms": passes, "setups": result, "same_tokens": same, "prompts": a.prompts, "tokens": a.tokens},
                indent=1,
            )
            + "\n"
        )


if __name__ == "__main__":
    main()
