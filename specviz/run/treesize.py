"""Sizing a draft tree to the machine: `--tree auto`.

Sequoia's idea (Chen et al. 2024, arXiv 2402.12374): the best tree depends on what verification
costs on this hardware. We (1) time target passes over 1…64 positions appended to a real context
(the cost curve), (2) for K = 1 (a chain), 2 and 4 children per node, grow one large dynamic tree
per step on short calibration decodes and record which nodes the target accepted (greedy), and
(3) for each (K, node budget N) take the accepted length the first N nodes of those trees would
have given (a budget-N dynamic tree is exactly the first N nodes the large one created) and the
step time the cost curve, the measured draft time per depth and the measured per-step overhead
(each calibration step's wall time beyond its drafts and its pass, fitted as a fixed part plus a part
per node: logging grows with the tree; a one-node calibration run anchors the fixed part, which the
large trees alone left to a noisy extrapolation) predict, and keep the one with
the most tokens per second. It also says which acceptance rate α a chain would need here to
break even, or to run 1.5× or 2× as fast as the evaluation model alone (alpha_needed).

(4) The prediction is then checked: unless it is exactly the run's own chain (its gamma, its
schedule and confidence stop; the drafter's prompt-lookup copies apply to both), the predicted shape
and that chain decode the calibration prompts in turns, timed end to end, and the predicted shape
runs only if it was measurably faster (RACE_MARGIN; meta.tree.auto.race). The model of step cost
knows a chain only without its stop, and the calibration's acceptance is a few dozen steps: on a
Zen 4 with bf16 units it predicted dynamic:4:8:4 at 1.10× the model alone, and that tree then
measured 0.84× the chain on the benchmark prompts (docs/BENCHMARKS.md, 2026-12-07).

The result (cost curve, candidates, choice) goes into the trace's meta.tree.auto and is drawn on
the speedup lab. Greedy acceptance stands in for every rule: it is what the draft can reach; the
sampling rule accepts somewhat less at high temperature.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from specviz.core.decoder import DecodeConfig, GammaPolicy, speculative_decode, target_decode
from specviz.core.drafting import Drafter
from specviz.core.rules import make_rule
from specviz.core.theory import GOALS, alpha_needed, interpolate_cost, needed_text, step_cost_ms
from specviz.core.tree import TreeShape, tree_mask, tree_positions
from specviz.core.warp import Sampling
from specviz.models.lm import CausalLM

__all__ = [
    "CALIBRATION_PROMPTS",
    "RACE_MARGIN",
    "SIZES",
    "Sizing",
    "alone_token_ms",
    "as_run",
    "checked",
    "choose",
    "cost_curve",
    "race",
    "resolve_tree",
    "size_tree",
]

SIZES = (1, 2, 4, 8, 16, 32, 48, 64)
# per children-per-node K: the large calibration tree, and the node budgets tried (K = 1 is a chain)
LARGE = {
    1: TreeShape("dynamic", nodes=8, depth=8, topk=1),
    2: TreeShape("dynamic", nodes=32, depth=8, topk=2),
    4: TreeShape("dynamic", nodes=64, depth=8, topk=4),
}
ANCHOR = TreeShape("dynamic", nodes=1, depth=8, topk=1)  # one node a step: the overhead fit's small end
CANDIDATES = {1: (1, 2, 3, 4, 5, 6, 8), 2: (4, 6, 8, 12, 16, 24, 32), 4: (4, 8, 12, 16, 24, 32, 48, 64)}
# calibration texts, not among the held-out prompts (assets/prompts/eval.txt)
CALIBRATION_PROMPTS = ("Tell me about the history of the printing press.", "How do bees make honey?")


def cost_curve(target: CausalLM, context: list[int], sizes: tuple[int, ...] = SIZES, reps: int = 5) -> dict[int, float]:
    """The fastest of `reps` timings, in milliseconds, of one tree-masked target pass over k
    positions after `context`, per k.

    The sizes take turns within each repetition (1, 2, 4, …, 64, then again) and the fastest round
    counts: other work on the machine (a browser on a classroom server, another session's run) only
    ever adds time, and a median of a few timings still caught it for some sizes and not others,
    which moved the α `alpha_needed` reports by a third between two measurements minutes apart."""
    cache = target.new_cache()
    target.forward(cache, context, last=1)
    past = target.cache_length(cache)
    times: dict[int, list[float]] = {k: [] for k in sizes}
    for _ in range(reps + 1):  # the first round is a warm-up for every shape
        for k in sizes:
            parents = list(range(-1, k - 2))  # the root + a chain of k - 1 nodes: k positions
            t0 = time.perf_counter()
            target.forward_tree(cache, [context[-1]] * k, tree_positions(parents, past, 1), tree_mask(parents, past, 1))
            target.sync()
            times[k].append((time.perf_counter() - t0) * 1e3)
            target.rollback(cache, past)
    return {k: min(t[1:]) for k, t in times.items()}


@dataclass
class Sizing:
    """What `auto` measured and chose."""

    shape: TreeShape
    costs_ms: dict[int, float]
    candidates: list[dict[str, float]] = field(
        default_factory=list
    )  # topk, nodes, tokens_per_step, step_ms, tokens_per_s
    draft_ms_per_level: float = 0.0
    overhead_ms: float = 0.0  # per step, whatever its size
    calibration_steps: int = 0
    overhead_ms_per_node: float = 0.0  # and per drafted node
    alone_ms: float = 0.0  # a token of the evaluation model alone, timed as decoded (0: not timed)
    predicted: TreeShape | None = None  # the best predicted shape when the race overruled it (shape: what runs)
    race: dict[str, Any] | None = None  # tokens/s measured for the predicted shape and the run's chain

    def meta(self) -> dict[str, Any]:
        """meta.tree.auto: the cost curve, the candidates and the choice."""
        return {
            "costs_ms": {str(k): round(v, 2) for k, v in self.costs_ms.items()},
            "draft_ms_per_level": round(self.draft_ms_per_level, 2),
            "overhead_ms": round(self.overhead_ms, 2),
            "overhead_ms_per_node": round(self.overhead_ms_per_node, 3),
            "calibration_steps": self.calibration_steps,
            **({"alone_ms": round(self.alone_ms, 2)} if self.alone_ms else {}),
            "candidates": [{k: round(v, 3) for k, v in c.items()} for c in self.candidates],
            "chosen": self.shape.text,
            "predicted": (self.predicted or self.shape).text,
            **({"race": self.race} if self.race else {}),
            "alpha_needed": self.alpha_needed(),
        }

    def alpha_needed(self) -> dict[str, dict[str, float] | None]:
        """For each goal in GOALS (as text: "1.5"): the α a chain would need here and its gamma, or None."""
        out: dict[str, dict[str, float] | None] = {}
        for goal in GOALS:
            need = alpha_needed(
                self.costs_ms,
                self.draft_ms_per_level,
                self.overhead_ms,
                goal,
                overhead_ms_per_node=self.overhead_ms_per_node,
                alone_ms=self.alone_ms or None,
            )
            out[f"{goal:g}"] = None if need is None else {"alpha": round(need[0], 3), "gamma": need[1]}
        return out


def choose(
    costs: dict[int, float],
    steps: dict[int, list[dict[str, Any]]],
    draft_ms_per_level: float,
    overhead_ms: float = 0.0,
    depth: int = 8,
    overhead_ms_per_node: float = 0.0,
) -> tuple[TreeShape, list[dict[str, float]]]:
    """The (children per node K, node budget N) with the most expected tokens per second.

    steps[K]: the calibration's steps with the large K-tree (step["tree"] with nodes and path). A
    budget-N tree is the first N nodes that tree created, so a step accepts the leading path nodes
    created before node N; it costs one draft pass per depth of those N nodes, one target pass over
    N + 1 positions (the nodes and the root), and the measured bookkeeping (overhead_ms per step plus
    overhead_ms_per_node times N). With no calibration step that drafted anything, the answer is
    the chain."""
    rows: list[dict[str, float]] = []
    for k, k_steps in sorted(steps.items()):
        if not k_steps:
            continue
        for n in CANDIDATES.get(k, ()):
            accepted, ms = [], []
            for s in k_steps:
                tree = s["tree"]
                kept = next((i for i, j in enumerate(tree["path"]) if j >= n), len(tree["path"]))
                accepted.append(kept)
                deepest = max((nd["depth"] for nd in tree["nodes"][:n]), default=1)
                ms.append(step_cost_ms(costs, deepest, n, draft_ms_per_level, overhead_ms, overhead_ms_per_node))
            per_step = statistics.mean(accepted) + 1
            step_ms = statistics.mean(ms)
            rows.append(
                {
                    "topk": k,
                    "nodes": n,
                    "tokens_per_step": per_step,
                    "step_ms": step_ms,
                    "tokens_per_s": per_step / step_ms * 1e3,
                }
            )
    if not rows:  # nothing was drafted on the calibration text (e.g. prompt lookup found no match)
        return TreeShape("chain"), rows
    best = max(rows, key=lambda r: r["tokens_per_s"])
    return TreeShape("dynamic", nodes=int(best["nodes"]), depth=depth, topk=int(best["topk"])), rows


def size_tree(target: CausalLM, drafter: Drafter, tokens: int = 32) -> Sizing:
    """Measure the cost curve and short greedy calibration decodes with a large tree of each K (and a
    one-node tree for the overhead fit); choose. About 25 to 50 seconds on a 2-core CPU for the embedded pair."""
    prompts = [target.encode(p) for p in CALIBRATION_PROMPTS]
    costs = cost_curve(target, prompts[0])
    alone = alone_token_ms(target, prompts[0])
    steps: dict[int, list[dict[str, Any]]] = {}
    levels = draft_ms = 0.0
    overheads: list[tuple[int, float]] = []  # (nodes, ms beyond the target pass)
    # the large trees' steps all have 8, 32 or 64 nodes: a tree of one node anchors the fit's fixed part
    # (its steps time the overhead only; the candidates' acceptance comes from the large trees)
    for k, large in [*LARGE.items(), (0, ANCHOR)]:
        cfg = DecodeConfig(rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=tokens, tree=large)
        steps[k] = []
        for ids in prompts:
            last = None  # when the previous step came: a step's wall time runs from there to its own
            for s in speculative_decode(target, drafter, ids, cfg):
                now, since = time.perf_counter(), last
                last = now
                if not (s.get("tree") and s["tree"]["nodes"]):
                    continue
                steps[k].append(s)
                levels += max(nd["depth"] for nd in s["tree"]["nodes"])
                draft_ms += s["timing_ms"]["draft"]
                if since is None:  # the first step also read the prompt
                    continue
                # what a step costs beyond its drafts and its target pass: masks, the rule, keeping the
                # accepted path in the cache, the step's record (logging), the loop; the step's own timing_ms
                # stops before the cache and the record, which cost a chain of 2 ~1.5 ms a step (phases.py)
                n_pos = len(s["tree"]["nodes"]) + 1
                wall = (now - since) * 1e3
                overheads.append((n_pos - 1, wall - s["timing_ms"]["draft"] - interpolate_cost(costs, n_pos)))
    per_level = draft_ms / max(levels, 1)
    overhead, per_node = _fit_overhead(overheads)
    anchor = steps.pop(0)
    shape, rows = choose(costs, steps, per_level, overhead, overhead_ms_per_node=per_node)
    n_steps = sum(len(v) for v in steps.values()) + len(anchor)
    return Sizing(shape, costs, rows, per_level, overhead, n_steps, per_node, alone)


RACE_ROUNDS = 2
# the sized shape must beat the run's own chain by this much to replace it: a race of two short texts
# moves by a few percent between runs, and on a tie the chain the person asked for should run
RACE_MARGIN = 1.03


def race(
    target: CausalLM, drafter: Drafter, configs: dict[str, DecodeConfig], prompts: list[list[int]]
) -> dict[str, float]:
    """Tokens per second of each configuration decoding every prompt, timed end to end (prefill, drafts,
    passes, logging: what a user waits for). Each first decodes a few tokens untimed (a code path that
    has not run yet in the process pays its first-call costs there, not in the race); then they take
    turns, the order reversed each round, and each keeps its fastest round (other work on the machine
    only ever adds time)."""
    for cfg in configs.values():
        for _ in speculative_decode(target, drafter, prompts[0], dataclasses.replace(cfg, max_new_tokens=8)):
            pass
    best = dict.fromkeys(configs, 0.0)
    names = list(configs)
    for r in range(RACE_ROUNDS):
        for name in names if r % 2 == 0 else names[::-1]:
            tokens, t0 = 0, time.perf_counter()
            for ids in prompts:
                for s in speculative_decode(target, drafter, ids, configs[name]):
                    tokens += s["n_accepted"] + 1
            target.sync()
            best[name] = max(best[name], tokens / max(time.perf_counter() - t0, 1e-9))
    return best


def checked(sizing: Sizing, cfg: DecodeConfig, target: CausalLM, drafter: Drafter, tokens: int = 32) -> Sizing:
    """The sizing with its prediction checked against the run's own chain (cfg's gamma and schedule): unless
    the predicted shape runs exactly that chain, the two decode the calibration prompts greedily in turns
    (race), and the predicted shape runs only when it measured at least RACE_MARGIN times the chain's speed;
    otherwise the run's chain does (shape "chain", the prediction kept in `predicted`)."""
    calibration = dataclasses.replace(
        cfg, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=tokens, seed=0
    )
    sized, chain = as_run(calibration, sizing.shape), dataclasses.replace(calibration, tree=TreeShape("chain"))
    if sizing.shape.kind != "dynamic" or (sized.tree, sized.gamma, sized.gamma_policy) == (
        chain.tree,
        chain.gamma,
        chain.gamma_policy,
    ):
        return sizing
    speeds = race(
        target, drafter, {"predicted": sized, "chain": chain}, [target.encode(p) for p in CALIBRATION_PROMPTS]
    )
    kept = "predicted" if speeds["predicted"] >= RACE_MARGIN * speeds["chain"] else "chain"
    result = {
        "predicted": {"shape": _run_words(sized), "tokens_per_s": round(speeds["predicted"], 2)},
        "chain": {"shape": _run_words(chain), "gamma": cfg.gamma, "tokens_per_s": round(speeds["chain"], 2)},
        "kept": kept,
        "margin": RACE_MARGIN,
    }
    if kept == "predicted":
        return dataclasses.replace(sizing, race=result)
    return dataclasses.replace(sizing, shape=TreeShape("chain"), predicted=sizing.shape, race=result)


def _run_words(cfg: DecodeConfig) -> str:
    """A raced configuration in a few words: "dynamic:4:8:4", "chain, gamma 4, stop below q 0.4"."""
    if cfg.tree.kind != "chain":
        return cfg.tree.text
    policy = cfg.gamma_policy
    adaptive = ", adaptive" if policy is not None and policy.name == "heuristic" else ""
    stop = f", stop below q {policy.confidence:g}" if policy is not None and policy.confidence is not None else ""
    return f"chain, gamma {cfg.gamma}{adaptive}{stop}"


def alone_token_ms(target: CausalLM, ids: list[int], tokens: int = 16) -> float:
    """The median milliseconds of a token of the evaluation model alone decoding `ids` (greedy), the
    prefill left out. A step's fitted overhead holds whatever a real step adds to the cost curve's
    fastest pass (its loop, the rule, the cache, a typical rather than the fastest pass); the model
    alone pays the like per token, so the break-even α compares like with like (without it, a run at
    α 0.45 measured 1.2x while the sizing said a chain needed α 0.56 to break even)."""
    times: list[float] = []
    t0 = time.perf_counter()
    for _ in target_decode(target, ids, Sampling(0), tokens):
        target.sync()
        t = time.perf_counter()
        times.append((t - t0) * 1e3)
        t0 = t
    return statistics.median(times[1:]) if len(times) > 1 else 0.0  # 0: not timed (it stopped at once)


def _fit_overhead(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(ms per step, ms per node), both >= 0: a least-squares line through (nodes, overhead) points;
    the median as a fixed cost when the points do not span several tree sizes."""
    if not points:
        return 0.0, 0.0
    xs = [float(n) for n, _ in points]
    if len(set(xs)) < 2:
        return max(0.0, statistics.median(ms for _, ms in points)), 0.0
    ys = [ms for _, ms in points]
    slope, intercept = statistics.linear_regression(xs, ys)
    if slope < 0:  # noise: no evidence that logging grows with the tree
        return max(0.0, statistics.median(ys)), 0.0
    if intercept < 0:  # no fixed part: the line through the origin
        return 0.0, max(0.0, sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs))
    return intercept, slope


def resolve_tree(
    cfg: DecodeConfig,
    shape: TreeShape,
    target: CausalLM,
    drafter: Drafter,
    say: Callable[[str], None] = lambda _: None,
    predicted: Sizing | None = None,
) -> tuple[DecodeConfig, dict[str, Any]]:
    """cfg with the tree `shape`; for `auto`, the shape sized to this machine and checked against cfg's own
    chain, and the meta to record (meta.tree, with .auto: the cost curve, the candidates, the prediction, the
    race, the choice). `predicted`: a size_tree result already measured for this pair (the Live page keeps one
    per pair; the race depends on the run's chain, so it runs each time). `say` hears progress."""
    if shape.kind != "auto":
        return dataclasses.replace(cfg, tree=shape), {}
    say("sizing the draft tree to this machine (target passes over 1-64 positions) ...")
    sizing = checked(predicted or size_tree(target, drafter), cfg, target, drafter)
    auto = sizing.meta()
    sized = as_run(cfg, sizing.shape)
    raced = ""
    if r := sizing.race:
        raced = (
            f" (measured on the calibration text: {r['predicted']['shape']} {r['predicted']['tokens_per_s']:.1f} tok/s, "
            f"{r['chain']['shape']} {r['chain']['tokens_per_s']:.1f}; the {r['kept']} runs)"
        )
    say(
        f"tree: {sizing.shape.text}{f' (a chain of {sized.gamma})' if sized.tree.kind == 'chain' else ''}{raced}; "
        f"{needed_text(auto['alpha_needed'])}"
    )
    return sized, {"tree": {**sized.tree.meta(), "auto": auto}}


def as_run(cfg: DecodeConfig, shape: TreeShape) -> DecodeConfig:
    """cfg running the chosen shape. One child per node is a chain of `nodes` drafts, and runs as one: a
    chain step rolls the cache back where a tree step builds a mask and gathers the kept positions, for
    the same drafts and the same accepted tokens. The sized gamma stays fixed (no adaptive schedule);
    a confidence stop the run asked for is kept."""
    if shape.kind == "dynamic" and shape.topk == 1:
        confidence = cfg.gamma_policy.confidence if cfg.gamma_policy else None
        policy = GammaPolicy.from_options(shape.nodes, confidence=confidence)
        return dataclasses.replace(cfg, tree=TreeShape("chain"), gamma=shape.nodes, gamma_policy=policy)
    return dataclasses.replace(cfg, tree=shape)
