"""The speculative decoding loop. It yields one step record at a time and does nothing else.

Each step, in order (_step, one function for chains and trees): (1) the drafter proposes drafts
with q, a chain of gamma or a tree of nodes; (2) ONE target pass scores them all, giving p after
the root and after each draft; (3) the rule accepts a path of n_accepted drafts; (4) the evaluation
model adds its own token: a correction after a rejection, or a bonus token when every draft on the
path was accepted; (5) the target cache keeps the context and the accepted drafts, and a drafter
that reads features hears theirs. _record builds the step record, for chains and trees alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from specviz.core.drafting import Drafter, TreeDrafter, chain_tree
from specviz.core.rules import Rule
from specviz.core.target import Target
from specviz.core.tree import (
    DraftTree,
    TreeShape,
    TreeVerdict,
    children_of,
    depths,
    tree_mask,
    tree_positions,
    verify_tree,
)
from specviz.core.warp import UNTEMPERED, Sampling, sample, warp
from specviz.trace import Step, TopEntry, TreeNode

__all__ = ["DEFAULT_CONFIDENCE", "DecodeConfig", "GammaPolicy", "build_config", "speculative_decode", "target_decode"]

# where the command line and the Live page stop a chain by default: after a model draft whose own q is below
# it. Measured at γ 4 on the embedded pair (docs/BENCHMARKS.md, 2026-12-07): 1.23x -> 1.32x the model alone
# greedy, 0.99x -> 1.20x at T 0.7; 0.3 and 0.5 ran 1.29x and 1.34x. The decoder's own default stays no stop.
DEFAULT_CONFIDENCE = 0.4


@dataclass(frozen=True)
class GammaPolicy:
    """How many drafts to ask for each step: a small control loop, as in transformers' assisted decoding.

    "heuristic" (transformers' default schedule): start at `start`, +2 after a step whose drafts were all
    accepted, −1 otherwise, never below `min_gamma` nor above DecodeConfig.gamma (the maximum).
    "constant" keeps `start`. `confidence`, when set, also stops a model drafter early: it stops after
    a drafted token whose own probability q(x) is below it (transformers' assistant_confidence_threshold).
    """

    name: str = "heuristic"
    start: int = 4
    increase: int = 2
    decrease: int = 1
    min_gamma: int = 1
    confidence: float | None = None

    def __post_init__(self) -> None:
        if self.name not in ("heuristic", "constant"):
            raise ValueError(f"unknown gamma policy {self.name!r}: use 'heuristic' or 'constant'")
        if self.min_gamma < 1 or self.start < self.min_gamma:
            raise ValueError(f"need 1 <= min_gamma <= start, got min_gamma {self.min_gamma}, start {self.start}")
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence}")

    def next(self, gamma: int, asked: int, drafted: int, n_accepted: int, max_gamma: int) -> int:
        """The draft length for the next step, after a step that asked for `asked` and drafted `drafted`."""
        if self.name == "constant":
            return gamma
        if drafted > 0 and n_accepted == drafted == asked:
            return min(gamma + self.increase, max_gamma)
        return max(gamma - self.decrease, self.min_gamma)

    @classmethod
    def from_options(cls, gamma: int, adaptive: bool = False, confidence: float | None = None) -> GammaPolicy | None:
        """The policy the command-line options ask for: None (always gamma drafts) when neither is set;
        adaptive is the heuristic schedule with gamma as its maximum, confidence alone keeps gamma (0: none)."""
        confidence = confidence or None
        if adaptive:
            return cls("heuristic", start=min(4, gamma), confidence=confidence)
        if confidence is not None:
            return cls("constant", start=gamma, confidence=confidence)
        return None

    def meta(self, max_gamma: int) -> dict[str, object]:
        return {
            "name": self.name,
            "start": min(self.start, max_gamma),
            "increase": self.increase,
            "decrease": self.decrease,
            "min": self.min_gamma,
            "max": max_gamma,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class DecodeConfig:
    gamma: int = 4  # drafts per step; with a gamma_policy, the most a step may draft
    rule: Rule = field(default_factory=lambda: Rule("sampling"))
    sampling: Sampling = field(default_factory=Sampling)
    max_new_tokens: int = 64
    seed: int = 0
    top_k_log: int = 10  # entries kept in each logged `top` list
    gamma_policy: GammaPolicy | None = None  # None: always gamma
    tree: TreeShape = field(default_factory=TreeShape)  # "chain": gamma drafts in a row

    def __post_init__(self) -> None:
        if self.tree.kind == "auto":
            raise ValueError("resolve tree 'auto' to a shape first (specviz.run.treesize.choose)")
        if self.gamma < 1:
            raise ValueError(f"gamma must be >= 1, got {self.gamma}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


def build_config(
    *,
    gamma: int = 4,
    rule: str = "sampling",
    tau: float | None = None,
    epsilon: float | None = None,
    delta: float | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    seed: int = 0,
    adaptive: bool = False,
    confidence: float | None = None,
    tree: TreeShape | None = None,
    top_k_log: int = 10,
) -> DecodeConfig:
    """The one place the options a person gives (CLI record and bench, the Live page, the lab's sweep)
    become a DecodeConfig. A rule parameter left None takes the rule's default (specviz.core.rules); one the
    rule does not take, or a bad value, raises ValueError with a readable message. A tree "auto" is
    left a chain here: it is sized once the models are loaded (specviz.run.treesize)."""
    from specviz.core.rules import make_rule

    shape = tree if tree is not None and tree.kind != "auto" else TreeShape()
    return DecodeConfig(
        gamma=gamma,
        rule=make_rule(rule, tau=tau, epsilon=epsilon, delta=delta),
        sampling=Sampling(temperature, top_k, top_p),
        max_new_tokens=max_new_tokens,
        seed=seed,
        top_k_log=top_k_log,
        gamma_policy=GammaPolicy.from_options(gamma, adaptive, confidence or None),
        tree=shape,
    )


def _tok(lm: Target, token_id: int) -> dict[str, Any]:
    """token_id and token (and `bytes`, hex, for a token that is part of a character)."""
    b = lm.token_bytes(token_id)
    return {"token_id": token_id, "token": lm.token_text(token_id), **({"bytes": b.hex()} if b is not None else {})}


def _top(probs: torch.Tensor, k: int, lm: Target) -> list[TopEntry]:
    values, idx = torch.topk(probs, min(k, probs.shape[-1]))
    return [
        {**_tok(lm, int(i)), "prob": float(v)}  # type: ignore[typeddict-item]
        for v, i in zip(values.tolist(), idx.tolist(), strict=True)
        if v > 0
    ]


def _raw(name: str, raw: torch.Tensor | None, j: int, token: int, k: int, lm: Target) -> dict[str, Any]:
    """{"<name>_raw": raw[j, token], "top_raw": top-k of raw[j]}, or {} when nothing was warped."""
    if raw is None:
        return {}
    return {f"{name}_raw": float(raw[j, token]), "top_raw": _top(raw[j], k, lm)}


def speculative_decode(
    target: Target,
    drafter: Drafter,
    prompt_ids: list[int],
    cfg: DecodeConfig,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[Step]:
    """Yield a step record as soon as each step is done; stop at max_new_tokens, EOS or should_stop()."""
    if not prompt_ids:
        raise ValueError("the prompt is empty: give at least one token")
    gen = torch.Generator().manual_seed(cfg.seed)
    eos = set(target.eos_token_ids)
    ids = list(prompt_ids)
    cache = target.new_cache()
    if len(ids) > 1:  # prefill: everything but the last token, which each step feeds
        if drafter.reads_features:
            drafter.read_features(target.forward_features(cache, ids[:-1], 1, drafter.feature_layers)[1], 0)
        else:
            target.forward(cache, ids[:-1], last=1)
    policy = cfg.gamma_policy if cfg.tree.kind == "chain" else None  # a tree's size is its shape's
    planned = cfg.gamma if policy is None else min(policy.start, cfg.gamma)  # drafts to ask for next
    generated, index = 0, 0
    while generated < cfg.max_new_tokens and not should_stop():
        budget = cfg.max_new_tokens - generated - 1  # never draft past it: drafts + the evaluation model's token fit
        gamma = min(planned, budget)
        step, appended = _step(target, drafter, ids, cache, cfg, gen, index, gamma, budget)
        drafted, n = len(step["draft"]), step["n_accepted"]
        yield step
        if policy is not None:
            planned = policy.next(planned, gamma, drafted, n, cfg.gamma)
        ids += appended
        generated += len(appended)
        index += 1
        if appended[-1] in eos:
            break


def _step(
    target: Target,
    drafter: Drafter,
    ids: list[int],
    cache: object,
    cfg: DecodeConfig,
    gen: torch.Generator,
    index: int,
    gamma: int,
    budget: int,
) -> tuple[Step, list[int]]:
    """One step, chain or tree: draft, one target pass, the rule, keep the accepted path in the cache.

    A chain is the tree with parents [-1, 0, 1, ...] and differs in three places only: its pass is a
    plain causal one (the pass shape that keeps greedy output token-identical to generate() in fp32),
    its rule tests the gamma drafts at once (Rule.verify), and its cache is cropped, not gathered (a
    sliding-window cache can be cropped only). gamma: the drafts a chain asks for; budget: the most
    drafts that fit before max_new_tokens. Returns (the step record, the tokens appended)."""
    chain = cfg.tree.kind == "chain"
    t0 = time.perf_counter()
    tree = _propose(drafter, ids, cfg, gen, gamma, budget)
    target.sync()
    t1 = time.perf_counter()
    tokens, parents = tree.token_ids, tree.parents
    cached = target.cache_length(cache)
    logits, hidden = (_chain_pass if chain else _tree_pass)(
        target, cache, ids, cached, tree, drafter.feature_layers if drafter.reads_features else None
    )
    p = warp(logits, cfg.sampling)  # [1 + N, V]: after the root, after each node
    q = tree.q.to(p.device) if tokens else p.new_zeros(0, p.shape[-1])
    # the models' own distributions, logged beside the warped ones when warping changed them
    # (at T = 0 every warped p and q is 0 or 1, which says nothing about how sure either model was)
    p_raw = None if cfg.sampling.identity else warp(logits, UNTEMPERED)
    r = torch.rand(len(tokens), generator=gen)
    u = float(torch.rand(1, generator=gen))
    v = _verify_chain(cfg.rule, p, q, tokens, r) if chain else verify_tree(cfg.rule, p, q, tokens, parents, r)
    x = sample(v.next_probs, u)
    target.sync()
    t2 = time.perf_counter()
    if chain:  # keep context + accepted drafts; x is fed next step
        target.rollback(cache, len(ids) + len(v.path))
    else:
        target.keep(cache, list(range(len(ids))) + [len(ids) + j for j in v.path])
    if hidden is not None:  # the positions kept: the context the target just read and the accepted drafts
        new_ctx = len(ids) - cached
        drafter.read_features(hidden[[*range(new_ctx), *(new_ctx + j for j in v.path)]], cached)
    appended = _until_eos([*(tokens[j] for j in v.path), x], set(target.eos_token_ids))
    timing = {"draft": (t1 - t0) * 1e3, "verify": (t2 - t1) * 1e3}
    step = _record(target, cfg, index, len(ids), _Scored(tree, p, q, p_raw, r, v, x), appended, budget, timing)
    return step, appended


def _propose(
    drafter: Drafter, ids: list[int], cfg: DecodeConfig, gen: torch.Generator, gamma: int, budget: int
) -> DraftTree:
    """The step's drafts as a tree. A chain: gamma drafts (a model drafter may stop early below the
    policy's confidence). A tree: grown by a TreeDrafter, children drawn without replacement for a
    recursive rule (sampling); a drafter that cannot branch drafts the tree's depth as a chain."""
    if cfg.tree.kind == "chain":
        policy = cfg.gamma_policy
        prop = drafter.propose(ids, gamma, cfg.sampling, gen, policy.confidence if policy is not None else None)
        # the tree of chain_tree without its path scores: a chain ranks nothing
        return DraftTree(
            prop.token_ids,
            list(range(-1, len(prop.token_ids) - 1)),
            prop.q,
            prop.q_raw,
            [],
            prop.why_empty,
            list(prop.copied),
        )
    if isinstance(drafter, TreeDrafter):
        sampled = cfg.rule.recursive and not cfg.sampling.greedy
        return drafter.propose_tree(ids, cfg.tree, cfg.sampling, gen, sampled, budget)
    depth = min(budget, cfg.tree.depth, cfg.tree.size)
    if depth <= 0:
        return DraftTree([], [], torch.zeros(0, 1), why_empty="budget")
    return chain_tree(drafter.propose(ids, depth, cfg.sampling, gen))


def _chain_pass(
    target: Target, cache: object, ids: list[int], cached: int, tree: DraftTree, features: tuple[int, ...] | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A plain causal pass over the new context and the drafts: logits [gamma + 1, V] (after the root,
    after each draft) and, for a feature reader (`features`: its layers), the hidden states [len(fed), d]
    ([len(fed), n·d] for n layers)."""
    fed, last = ids[cached:] + tree.token_ids, len(tree.token_ids) + 1
    if features is not None:
        return target.forward_features(cache, fed, last, features)
    return target.forward(cache, fed, last=last), None


def _tree_pass(
    target: Target, cache: object, ids: list[int], cached: int, tree: DraftTree, features: tuple[int, ...] | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One tree-masked pass over the new context and every node: logits [1 + N, V] (after the root,
    after each node) and, for a feature reader (`features`: its layers), the hidden states [len(fed), d]."""
    new_ctx = len(ids) - cached
    logits, hidden = target.forward_tree(
        cache,
        ids[cached:] + tree.token_ids,
        tree_positions(tree.parents, len(ids) - 1, new_ctx),
        tree_mask(tree.parents, cached, new_ctx),
        features=features is not None,
        layers=features or (),
    )
    return logits[new_ctx - 1 :], hidden if features is not None else None


def _verify_chain(rule: Rule, p: torch.Tensor, q: torch.Tensor, tokens: list[int], r: torch.Tensor) -> TreeVerdict:
    """A chain verified at once (Rule.verify: the rule's test on the gamma rows, on p's device), in the
    tree's verdict form. The test reads every position, so accept_prob, ratio and cutoff are kept past
    the first rejection too; accepted is None there, as for a node never tested."""
    gamma = len(tokens)
    verdict = rule.verify(p, q, torch.tensor(tokens, dtype=torch.long, device=p.device), r.to(p.device))
    n = verdict.n_accepted
    next_probs, source = rule.next_distribution(p[n], q[n] if n < gamma else None)
    nones: list[None] = [None] * gamma
    accepted = verdict.accepted.tolist()[: n + 1] + nones[n + 1 :]

    def each(t: torch.Tensor | None) -> list[float | None]:
        return list(nones) if t is None else t.tolist()

    return TreeVerdict(
        list(range(n)), accepted, each(verdict.accept_prob), list(nones), list(nones), each(verdict.ratio),
        each(verdict.cutoff), next_probs, source, rejected_at=n - 1 if n < gamma else None,
    )  # fmt: skip


def _until_eos(appended: list[int], eos: set[int]) -> list[int]:
    """The tokens a step appends, up to and including the first EOS."""
    for j, tok in enumerate(appended):
        if tok in eos:
            return appended[: j + 1]
    return appended


def _main_line(parents: list[int], path: list[int], rejected_at: int | None) -> list[int]:
    """The nodes a chain view shows: the accepted path, then (after a rejection) the first child
    tested there and its first-child line, which was never evaluated. A chain's is every draft."""
    line = list(path)
    if rejected_at is not None:
        node = children_of(parents, rejected_at)[0]
        while True:
            line.append(node)
            kids = children_of(parents, node)
            if not kids:
                return line
            node = kids[0]
    return line


@dataclass(frozen=True)
class _Scored:
    """What a step computed, for its record: the tree; p [1 + N, V], node j tested against row parent + 1;
    q [N, V]; p_raw (None when warping changed nothing); r [N]; the verdict; the evaluation model's token x."""

    tree: DraftTree
    p: torch.Tensor
    q: torch.Tensor
    p_raw: torch.Tensor | None
    r: torch.Tensor
    v: TreeVerdict
    x: int

    def r_read(self, j: int, random: bool) -> float | None:
        """The uniform node j's test read: logged for a tested node when the rule reads r."""
        return float(self.r[j]) if self.v.accepted[j] is not None and random else None


def _copied(tree: DraftTree, j: int) -> dict[str, int]:
    """A draft's or node's `copied` entry: the n-gram a prompt-lookup copy followed; {} for the model's own."""
    return {"copied": tree.copied[j]} if tree.copied and tree.copied[j] else {}


def _record(
    target: Target,
    cfg: DecodeConfig,
    index: int,
    context_length: int,
    s: _Scored,
    appended: list[int],
    budget: int,
    timing_ms: dict[str, float],
) -> Step:
    """The step record of a chain or a tree. draft and verify show the main line (a chain's: every draft),
    so every chain view reads a tree step too; a tree step adds step.tree with every node."""
    k, tokens, parents, v, x, p, q = cfg.top_k_log, s.tree.token_ids, s.tree.parents, s.v, s.x, s.p, s.q
    n, random = len(v.path), cfg.rule.uses_random
    main = _main_line(parents, v.path, v.rejected_at)
    row = [par + 1 for par in parents]  # node → p's row it is tested against
    step: Step = {  # type: ignore[typeddict-item]
        "index": index,
        "context_length": context_length,
        "draft": [
            {
                **_tok(target, tokens[j]),
                "q": float(q[j, tokens[j]]),
                "top": _top(q[j], k, target),
                **_raw("q", s.tree.q_raw, j, tokens[j], k, target),
                **_copied(s.tree, j),
            }
            for j in main
        ],
        "verify": [
            {
                "p": float(p[row[j], tokens[j]]),
                "accept_prob": v.accept_prob[j],
                "r": s.r_read(j, random),
                "ratio": v.ratio[j],
                "cutoff": v.cutoff[j],
                "accepted": v.accepted[j],
                # a later sibling is tested with the earlier ones removed from p and q
                **({"p_test": v.p_test[j], "q_test": v.q_test[j]} if j != children_of(parents, parents[j])[0] else {}),
                "top": _top(p[row[j]], k, target),
                **_raw("p", s.p_raw, row[j], tokens[j], k, target),
            }
            for j in main
        ],
        "n_accepted": n,
        "next": None
        if len(appended) <= n  # generation ended inside the accepted drafts
        else {  # type: ignore[typeddict-item]
            **_tok(target, x),
            "kind": "correction" if v.rejected_at is not None else "bonus",
            "source": v.source,
            "prob": float(v.next_probs[x]),
            "top": _top(v.next_probs, k, target),
            **_raw("p", s.p_raw, (v.path[-1] + 1) if v.path else 0, x, k, target),
        },
        "timing_ms": timing_ms,
    }
    if cfg.tree.kind != "chain":
        depth = depths(parents)
        nodes: list[TreeNode] = [
            {  # type: ignore[typeddict-item]
                **_tok(target, t),
                "parent": parents[j],
                "depth": depth[j],
                "q": float(q[j, t]),
                "p": float(p[row[j], t]),
                "accepted": v.accepted[j],
                "r": s.r_read(j, random),
                "accept_prob": v.accept_prob[j],
                "p_test": v.p_test[j],
                "q_test": v.q_test[j],
                "ratio": v.ratio[j],
                "cutoff": v.cutoff[j],
                "score": s.tree.score[j] if j < len(s.tree.score) else None,
                **_copied(s.tree, j),
            }
            for j, t in enumerate(tokens)
        ]
        step["tree"] = {"shape": cfg.tree.text, "nodes": nodes, "path": list(v.path), "main": main}
    if not tokens:  # recorded, not guessed later: why this step drafted nothing
        step["no_draft"] = "budget" if budget <= 0 else (s.tree.why_empty or "drafter")
    return step


def target_decode(
    target: Target,
    prompt_ids: list[int],
    sampling: Sampling,
    max_new_tokens: int,
    seed: int = 0,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[int]:
    """Plain autoregressive decoding with the target alone, same warping and seed: the baseline."""
    gen = torch.Generator().manual_seed(seed)
    eos = set(target.eos_token_ids)
    cache = target.new_cache()
    pending = list(prompt_ids)
    for _ in range(max_new_tokens):
        if should_stop():
            return
        probs = warp(target.forward(cache, pending, last=1)[-1], sampling)
        x = sample(probs, float(torch.rand(1, generator=gen)))
        yield x
        if x in eos:
            return
        pending = [x]
