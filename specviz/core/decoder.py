"""The speculative decoding loop. It yields one step record at a time and does nothing else.

Each step, in order: (1) the drafter proposes gamma tokens with q; (2) ONE target pass scores
them all, giving p at gamma+1 positions; (3) the rule accepts a leading run of n_accepted
drafts; (4) the evaluation model adds its own token — a correction from the residual after a
rejection, or a bonus token when every draft was accepted; (5) the target cache is cropped to
the accepted prefix and the drafter hears n_accepted.
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
from specviz.core.tree import DraftTree, TreeShape, children_of, depths, tree_mask, tree_positions, verify_tree
from specviz.core.warp import UNTEMPERED, Sampling, sample, warp
from specviz.trace import Step, TopEntry, TreeNode

__all__ = ["DecodeConfig", "GammaPolicy", "speculative_decode", "target_decode"]


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
        adaptive is the heuristic schedule with gamma as its maximum, confidence alone keeps gamma."""
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


def _opt(t: torch.Tensor | None, j: int) -> float | None:
    return None if t is None else float(t[j])


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
    rule, k = cfg.rule, cfg.top_k_log
    eos = set(target.eos_token_ids)
    ids = list(prompt_ids)
    cache = target.new_cache()
    features = drafter.reads_features
    if len(ids) > 1:  # prefill: everything but the last token, which each step feeds
        if features:
            drafter.read_features(target.forward_features(cache, ids[:-1], last=1)[1], 0)
        else:
            target.forward(cache, ids[:-1], last=1)
    policy = cfg.gamma_policy
    planned = cfg.gamma if policy is None else min(policy.start, cfg.gamma)  # drafts to ask for next
    min_confidence = policy.confidence if policy is not None else None
    generated, index = 0, 0
    while generated < cfg.max_new_tokens and not should_stop():
        if cfg.tree.kind != "chain":
            step, appended = _tree_step(
                target, drafter, ids, cache, cfg, gen, index, cfg.max_new_tokens - generated - 1
            )
            yield step
            ids += appended
            generated += len(appended)
            index += 1
            if appended[-1] in eos:
                break
            continue
        # never draft past the budget: drafts + the evaluation model's token fit exactly
        gamma = min(planned, cfg.max_new_tokens - generated - 1)
        asked = gamma
        t0 = time.perf_counter()
        proposal = drafter.propose(ids, gamma, cfg.sampling, gen, min_confidence)
        target.sync()
        t1 = time.perf_counter()
        drafts = proposal.token_ids
        gamma = len(drafts)
        cached = target.cache_length(cache)
        fed = ids[cached:] + drafts
        if features:
            logits, hidden = target.forward_features(cache, fed, last=gamma + 1)  # [gamma+1, V], [len(fed), d]
        else:
            logits = target.forward(cache, fed, last=gamma + 1)  # [gamma+1, V]
        p = warp(logits, cfg.sampling)
        q = proposal.q.to(p.device)
        # the models' own distributions, logged beside the warped ones when warping changed them
        # (at T = 0 every warped p and q is 0 or 1, which says nothing about how sure either model was)
        p_raw = None if cfg.sampling.identity else warp(logits, UNTEMPERED)
        q_raw = proposal.q_raw
        r = torch.rand(gamma, generator=gen)
        u = float(torch.rand(1, generator=gen))
        draft_t = torch.tensor(drafts, dtype=torch.long, device=p.device)
        verdict = rule.verify(p, q, draft_t, r.to(p.device))
        n = verdict.n_accepted
        next_probs, source = rule.next_distribution(p[n], q[n] if n < gamma else None)
        x = sample(next_probs, u)
        target.sync()
        t2 = time.perf_counter()
        target.rollback(cache, len(ids) + n)  # keep context + accepted drafts; x is fed next step
        if features:  # the positions kept: the context the target just read and the accepted drafts
            drafter.read_features(hidden[: len(ids) - cached + n], cached)

        appended = [*drafts[:n], x]
        for j, tok in enumerate(appended):
            if tok in eos:
                appended = appended[: j + 1]
                break
        kind = "bonus" if n == gamma else "correction"
        step: Step = {  # type: ignore[typeddict-item]
            "index": index,
            "context_length": len(ids),
            "draft": [
                {
                    **_tok(target, d),
                    "q": float(q[j, d]),
                    "top": _top(q[j], k, target),
                    **_raw("q", q_raw, j, d, k, target),
                }
                for j, d in enumerate(drafts)
            ],
            "verify": [
                {
                    "p": float(p[j, d]),
                    "accept_prob": _opt(verdict.accept_prob, j),
                    "r": float(r[j]) if rule.uses_random and j <= n else None,
                    "ratio": _opt(verdict.ratio, j),
                    "cutoff": _opt(verdict.cutoff, j),
                    "accepted": bool(verdict.accepted[j]) if j <= n else None,
                    "top": _top(p[j], k, target),
                    **_raw("p", p_raw, j, d, k, target),
                }
                for j, d in enumerate(drafts)
            ],
            "n_accepted": n,
            "next": None
            if len(appended) <= n  # generation ended inside the accepted drafts
            else {  # type: ignore[typeddict-item]
                **_tok(target, x),
                "kind": kind,
                "source": source,
                "prob": float(next_probs[x]),
                "top": _top(next_probs, k, target),
                **_raw("p", p_raw, n, x, k, target),
            },
            "timing_ms": {"draft": (t1 - t0) * 1e3, "verify": (t2 - t1) * 1e3},
        }
        if not drafts:  # recorded, not guessed later: why this step drafted nothing
            step["no_draft"] = "budget" if asked == 0 else (proposal.why_empty or "drafter")
        yield step
        if policy is not None:
            planned = policy.next(planned, asked, gamma, n, cfg.gamma)
        ids += appended
        generated += len(appended)
        index += 1
        if appended[-1] in eos:
            break


def _main_line(parents: list[int], path: list[int], rejected_at: int | None) -> list[int]:
    """The nodes a chain view shows: the accepted path, then (after a rejection) the first child
    tested there and its first-child line, which was never evaluated."""
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


def _tree_step(
    target: Target,
    drafter: Drafter,
    ids: list[int],
    cache: object,
    cfg: DecodeConfig,
    gen: torch.Generator,
    index: int,
    max_depth: int,
) -> tuple[Step, list[int]]:
    """One step with a draft tree: grow it, score every node in one tree-masked target pass, walk it
    with the rule, keep the accepted path in the cache. The step's draft/verify show the main line
    (so every chain view reads it), step["tree"] holds every node. Returns (step, tokens appended)."""
    rule, k = cfg.rule, cfg.top_k_log
    eos = set(target.eos_token_ids)
    sampled = rule.name == "sampling" and not cfg.sampling.greedy
    features = drafter.reads_features
    t0 = time.perf_counter()
    if isinstance(drafter, TreeDrafter):
        tree = drafter.propose_tree(ids, cfg.tree, cfg.sampling, gen, sampled, max_depth)
    else:  # a drafter that cannot branch drafts the tree's depth as a chain
        depth = min(max_depth, cfg.tree.depth, cfg.tree.size)
        tree = (
            chain_tree(drafter.propose(ids, depth, cfg.sampling, gen))
            if depth > 0
            else DraftTree([], [], torch.zeros(0, 1), why_empty="budget")
        )
    target.sync()
    t1 = time.perf_counter()
    tokens, parents = tree.token_ids, tree.parents
    n_nodes = len(tokens)
    cached = target.cache_length(cache)
    new_ctx = len(ids) - cached
    fed = ids[cached:] + tokens
    logits, hidden = target.forward_tree(
        cache,
        fed,
        tree_positions(parents, len(ids) - 1, new_ctx),
        tree_mask(parents, cached, new_ctx),
        features=features,
    )
    logits = logits[new_ctx - 1 :]  # [1 + N, V]: after the root, after each node
    p = warp(logits, cfg.sampling)
    q = tree.q.to(p.device) if n_nodes else torch.zeros(0, p.shape[-1])
    p_raw = None if cfg.sampling.identity else warp(logits, UNTEMPERED)
    r = torch.rand(n_nodes, generator=gen)
    u = float(torch.rand(1, generator=gen))
    v = verify_tree(rule, p, q, tokens, parents, r)
    x = sample(v.next_probs, u)
    target.sync()
    t2 = time.perf_counter()
    path = v.path
    target.keep(cache, list(range(len(ids))) + [len(ids) + j for j in path])
    if features and hidden is not None:
        drafter.read_features(torch.cat([hidden[:new_ctx], hidden[[new_ctx + j for j in path]]]), cached)
    n = len(path)
    appended = [tokens[j] for j in path] + [x]
    for j, tok in enumerate(appended):
        if tok in eos:
            appended = appended[: j + 1]
            break
    main = _main_line(parents, path, v.rejected_at)
    depth = depths(parents)
    row = {j: (parents[j] + 1) for j in range(n_nodes)}  # node → p's row it is tested against
    nodes: list[TreeNode] = [
        {  # type: ignore[typeddict-item]
            **_tok(target, t),
            "parent": parents[j],
            "depth": depth[j],
            "q": float(q[j, t]),
            "p": float(p[row[j], t]),
            "accepted": v.accepted[j],
            "r": float(r[j]) if v.accepted[j] is not None and rule.uses_random else None,
            "accept_prob": v.accept_prob[j],
            "p_test": v.p_test[j],
            "q_test": v.q_test[j],
            "ratio": v.ratio[j],
            "cutoff": v.cutoff[j],
            "score": tree.score[j] if j < len(tree.score) else None,
        }
        for j, t in enumerate(tokens)
    ]
    q_raw = tree.q_raw
    step: Step = {  # type: ignore[typeddict-item]
        "index": index,
        "context_length": len(ids),
        "draft": [
            {
                **_tok(target, tokens[j]),
                "q": float(q[j, tokens[j]]),
                "top": _top(q[j], k, target),
                **_raw("q", q_raw, j, tokens[j], k, target),
            }
            for j in main
        ],
        "verify": [
            {
                "p": float(p[row[j], tokens[j]]),
                "accept_prob": v.accept_prob[j],
                "r": nodes[j]["r"],
                "ratio": v.ratio[j],
                "cutoff": v.cutoff[j],
                "accepted": v.accepted[j],
                # a later sibling is tested with the earlier ones removed from p and q
                **({"p_test": v.p_test[j], "q_test": v.q_test[j]} if j != children_of(parents, parents[j])[0] else {}),
                "top": _top(p[row[j]], k, target),
                **_raw("p", p_raw, row[j], tokens[j], k, target),
            }
            for j in main
        ],
        "n_accepted": n,
        "next": None
        if len(appended) <= n
        else {  # type: ignore[typeddict-item]
            **_tok(target, x),
            "kind": "correction" if v.rejected_at is not None else "bonus",
            "source": v.source,
            "prob": float(v.next_probs[x]),
            "top": _top(v.next_probs, k, target),
            **_raw("p", p_raw, (path[-1] + 1) if path else 0, x, k, target),
        },
        "timing_ms": {"draft": (t1 - t0) * 1e3, "verify": (t2 - t1) * 1e3},
        "tree": {"shape": cfg.tree.text, "nodes": nodes, "path": list(path), "main": main},
    }
    if not tokens:
        step["no_draft"] = "budget" if max_depth <= 0 else (tree.why_empty or "drafter")
    return step, appended


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
