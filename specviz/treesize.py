"""Sizing a draft tree to the machine: `--tree auto`.

Sequoia's idea (Chen et al. 2024, arXiv 2402.12374): the best tree depends on what verification
costs on this hardware. We (1) time target passes over 1…64 positions appended to a real context
(the cost curve), (2) grow one large dynamic tree per step on a short calibration decode and
record which nodes the target accepted (greedy), and (3) for each candidate node budget N, take the
accepted length the first N nodes of those trees would have given (a budget-N dynamic tree is
exactly the first N nodes the large one created) and the step time the cost curve and the measured
draft time predict, and keep the N with the most tokens per second.

The result (cost curve, candidates, choice) goes into the trace's meta.tree.auto and is drawn on
the speedup lab. Greedy acceptance stands in for every rule: it is what the draft can reach; the
sampling rule accepts somewhat less at high temperature.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from specviz.decoder import DecodeConfig, speculative_decode
from specviz.drafters import Drafter
from specviz.models import CausalLM
from specviz.rules import make_rule
from specviz.tree import TreeShape, tree_mask, tree_positions
from specviz.warp import Sampling

__all__ = ["CALIBRATION_PROMPT", "SIZES", "Sizing", "choose", "cost_curve", "resolve_tree", "size_tree"]

SIZES = (1, 2, 4, 8, 16, 32, 48, 64)
CANDIDATES = (2, 4, 6, 8, 12, 16, 24, 32, 48, 64)
LARGE = TreeShape("dynamic", nodes=64, depth=8, topk=4)
CALIBRATION_PROMPT = "Tell me about the history of the printing press."  # not among the held-out prompts


def cost_curve(target: CausalLM, context: list[int], sizes: tuple[int, ...] = SIZES, reps: int = 5) -> dict[int, float]:
    """Median milliseconds of one tree-masked target pass over k positions after `context`, per k."""
    cache = target.new_cache()
    target.forward(cache, context, last=1)
    past = target.cache_length(cache)
    out: dict[int, float] = {}
    for k in sizes:
        parents = list(range(-1, k - 2))  # the root + a chain of k - 1 nodes: k positions
        times = []
        for _ in range(reps + 1):  # the first is a warm-up for this shape
            t0 = time.perf_counter()
            target.forward_tree(cache, [context[-1]] * k, tree_positions(parents, past, 1), tree_mask(parents, past, 1))
            target.sync()
            times.append((time.perf_counter() - t0) * 1e3)
            target.rollback(cache, past)
        out[k] = statistics.median(times[1:])
    return out


def _interpolate(costs: dict[int, float], k: int) -> float:
    """Milliseconds for k positions from the measured curve (linear between measured sizes)."""
    ks = sorted(costs)
    if k <= ks[0]:
        return costs[ks[0]]
    for a, b in itertools.pairwise(ks):
        if k <= b:
            return costs[a] + (costs[b] - costs[a]) * (k - a) / (b - a)
    a, b = ks[-2], ks[-1]
    return costs[b] + (costs[b] - costs[a]) * (k - b) / (b - a)


@dataclass
class Sizing:
    """What `auto` measured and chose."""

    shape: TreeShape
    costs_ms: dict[int, float]
    candidates: list[dict[str, float]] = field(default_factory=list)  # nodes, tokens_per_step, step_ms, tokens_per_s
    draft_ms_per_level: float = 0.0
    calibration_steps: int = 0

    def meta(self) -> dict[str, Any]:
        """meta.tree.auto: the cost curve, the candidates and the choice."""
        return {
            "costs_ms": {str(k): round(v, 2) for k, v in self.costs_ms.items()},
            "draft_ms_per_level": round(self.draft_ms_per_level, 2),
            "calibration_steps": self.calibration_steps,
            "candidates": [{k: round(v, 3) for k, v in c.items()} for c in self.candidates],
            "chosen": self.shape.text,
        }


def choose(
    costs: dict[int, float], steps: list[dict[str, Any]], draft_ms_per_level: float, topk: int = LARGE.topk
) -> tuple[TreeShape, list[dict[str, float]]]:
    """The node budget with the most expected tokens per second.

    steps: the calibration's tree steps (step["tree"] with nodes and path). For budget N a step
    accepts the leading path nodes created before node N; it costs the draft's levels up to the
    deepest of those N nodes, and one target pass over (n_accepted + 1 re-read) + N positions."""
    rows: list[dict[str, float]] = []
    for n in CANDIDATES:
        accepted, ms = [], []
        for s in steps:
            tree = s["tree"]
            path = tree["path"]
            kept = next((i for i, j in enumerate(path) if j >= n), len(path))
            accepted.append(kept)
            depth = max((nd["depth"] for nd in tree["nodes"][:n]), default=0)
            ms.append(draft_ms_per_level * max(depth, 1) + _interpolate(costs, n + 1))
        tps = (statistics.mean(accepted) + 1) / statistics.mean(ms) * 1e3
        rows.append(
            {
                "nodes": n,
                "tokens_per_step": statistics.mean(accepted) + 1,
                "step_ms": statistics.mean(ms),
                "tokens_per_s": tps,
            }
        )
    best = max(rows, key=lambda r: r["tokens_per_s"])
    return TreeShape("dynamic", nodes=int(best["nodes"]), depth=LARGE.depth, topk=topk), rows


def size_tree(target: CausalLM, drafter: Drafter, tokens: int = 48) -> Sizing:
    """Measure the cost curve and a short greedy calibration decode with a large tree; choose (a few seconds)."""
    ids = target.encode(CALIBRATION_PROMPT)
    costs = cost_curve(target, ids)
    cfg = DecodeConfig(rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=tokens, tree=LARGE)
    steps = [s for s in speculative_decode(target, drafter, ids, cfg) if s.get("tree") and s["tree"]["nodes"]]
    levels = sum(max(nd["depth"] for nd in s["tree"]["nodes"]) for s in steps) or 1
    draft_ms = sum(s["timing_ms"]["draft"] for s in steps) / levels
    shape, rows = choose(costs, steps, draft_ms)
    return Sizing(shape, costs, rows, draft_ms, len(steps))


def resolve_tree(
    cfg: DecodeConfig, shape: TreeShape, target: CausalLM, drafter: Drafter, say: Callable[[str], None] = lambda _: None
) -> tuple[DecodeConfig, dict[str, Any]]:
    """cfg with the tree `shape`; for `auto`, the shape sized to this machine, and the meta to record
    (meta.tree, with .auto: the cost curve, the candidates, the choice). `say` hears progress."""
    if shape.kind != "auto":
        return dataclasses.replace(cfg, tree=shape), {}
    say("sizing the draft tree to this machine (target passes over 1-64 positions) ...")
    sizing = size_tree(target, drafter)
    say(f"tree: {sizing.shape.text}")
    return dataclasses.replace(cfg, tree=sizing.shape), {"tree": {**sizing.shape.meta(), "auto": sizing.meta()}}
