"""A small causal LM as the drafter: drafts autoregressively with its own KV cache, rolled back to the
new context at the next step (what the target rejected is dropped there).

Imports: torch, specviz.core, specviz.models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from specviz.core.drafting import Proposal, ReadsTokensOnly
from specviz.core.tree import DraftTree, TreeShape, ancestors, depths, feed_mask, grow
from specviz.core.warp import UNTEMPERED, Sampling, sample, warp
from specviz.drafters.ngram import LookupFallback
from specviz.models.lm import CausalLM

__all__ = ["ModelDrafter"]


@dataclass
class ModelDrafter(ReadsTokensOnly):
    """Drafts autoregressively with a small LM sharing the target's tokenizer; with `lookup`, a chain
    copies from earlier text where the LM is unsure (LookupFallback)."""

    lm: CausalLM
    vocab_size: int  # the target's logits width: q is padded or cut to it
    name: str = ""
    lookup: LookupFallback | None = None
    _cache: object = field(default=None, repr=False)
    _cached: list[int] = field(default_factory=list, repr=False)  # the ids the cache holds

    def __post_init__(self) -> None:
        self.name = self.name or self.lm.name

    def reset(self) -> None:
        self._cache, self._cached = None, []

    def propose(
        self,
        ids: list[int],
        gamma: int,
        sampling: Sampling,
        generator: torch.Generator,
        min_confidence: float | None = None,
    ) -> Proposal:
        """Up to gamma drafts; with min_confidence, stop after a model draft whose own q(x) (before warping:
        greedy's q is one-hot) is below it (never after a copy)."""
        if gamma <= 0:
            return Proposal([], torch.zeros(0, self.vocab_size))
        pending = self._resume(ids)
        tmap = self.lm.token_map
        tokens: list[int] = []
        qs: list[torch.Tensor] = []
        raws: list[torch.Tensor] = []
        copied: list[int] = []
        for _ in range(gamma):
            logits = self.lm.forward(self._cache, tmap.to_draft(pending) if tmap else pending, last=1)[-1]
            self._cached += pending
            q = self._q(logits, sampling)
            raw = None if sampling.identity else self._q(logits, UNTEMPERED)
            u = float(torch.rand(1, generator=generator))  # drawn either way: a copy leaves the stream as it was
            own = q if raw is None else raw  # the LM's own distribution: greedy's q is one-hot
            found = None if self.lookup is None else self.lookup.copy(ids, tokens, own)
            if found is not None:  # a one-hot q: the rules test it as any draft
                x, n = found
                q = torch.zeros_like(q)
                q[x] = 1.0
                raw = None if raw is None else q
            else:
                x, n = sample(q, u), 0
            tokens.append(x)
            qs.append(q)
            copied.append(n)
            if raw is not None:
                raws.append(raw)
            pending = [x]
            # the draft is unsure (its own q, before warping): later drafts would likely be wasted. A copy
            # goes on: the model's q says nothing of it, and copies were right ~3 times in 4 (BENCHMARKS)
            if min_confidence is not None and not n and float(own[x]) < min_confidence:
                break
        return Proposal(
            tokens, torch.stack(qs), q_raw=torch.stack(raws) if raws else None, copied=copied if self.lookup else []
        )

    def propose_tree(
        self,
        ids: list[int],
        shape: TreeShape,
        sampling: Sampling,
        generator: torch.Generator,
        sampled: bool,
        max_depth: int,
    ) -> DraftTree:
        """A draft tree from this LM: one pass over the new context, then one tree-masked pass per
        level over the nodes that level expands. The tree's own slots leave the cache afterwards.
        With `lookup` and not `sampled`, the copy from earlier text hangs beside (LookupFallback.graft)."""
        if max_depth <= 0:
            return DraftTree([], [], torch.zeros(0, self.vocab_size), why_empty="budget")
        pending = self._resume(ids)
        tmap = self.lm.token_map
        logits = self.lm.forward(self._cache, tmap.to_draft(pending) if tmap else pending, last=1)[-1]
        self._cached = list(ids)
        n_ctx = len(ids)
        slots: dict[int, int] = {}  # node → its slot in the draft cache

        def feed(nodes: list[int], tree: DraftTree) -> tuple[torch.Tensor, torch.Tensor | None]:
            past = self.lm.cache_length(self._cache)
            toks = [tree.token_ids[j] for j in nodes]
            depth = depths(tree.parents)
            visible = [[slots[a] for a in ancestors(tree.parents, j)[:-1]] for j in nodes]
            out, _ = self.lm.forward_tree(
                self._cache,
                tmap.to_draft(toks) if tmap else toks,
                [n_ctx - 1 + depth[j] for j in nodes],
                feed_mask(past, n_ctx, visible),
            )
            for i, j in enumerate(nodes):
                slots[j] = past + i
            q = torch.stack([self._q(row, sampling) for row in out])
            return q, None if sampling.identity else torch.stack([self._q(row, UNTEMPERED) for row in out])

        raw = None if sampling.identity else self._q(logits, UNTEMPERED)
        tree = grow(shape, self._q(logits, sampling), raw, feed, sampled, generator, max_depth)
        self.lm.rollback(self._cache, n_ctx)  # the tree's slots go: the next step re-reads what was accepted
        if self.lookup is not None and not sampled:  # greedy: the copy as a branch beside the model's
            tree = self.lookup.graft(tree, ids, min(max_depth, shape.depth), self.vocab_size)
        return tree

    def _resume(self, ids: list[int]) -> list[int]:
        """Keep the longest cached prefix that still matches the context; return the ids to feed."""
        if self._cache is None:
            self._cache = self.lm.new_cache()
        keep = 0
        limit = min(len(self._cached), len(ids) - 1)
        while keep < limit and self._cached[keep] == ids[keep]:
            keep += 1
        self.lm.rollback(self._cache, keep)
        self._cached = self._cached[:keep]
        return list(ids[keep:])

    def _q(self, logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
        """[V_draft] logits → [V_target] distribution (scattered back through a token map)."""
        tmap = self.lm.token_map
        if tmap is not None:
            return tmap.to_target(warp(logits[: len(tmap.target_ids)], sampling), self.vocab_size)
        return _fit(warp(logits, sampling), self.vocab_size)

    def meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": "model"}
        if self.lookup is not None:
            out["lookup"] = self.lookup.meta()
        return out


def _fit(q: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Pad (or cut) the draft's distribution to the target's logits width."""
    if q.shape[-1] == vocab_size:
        return q
    if q.shape[-1] > vocab_size:
        q = q[..., :vocab_size]
        return q / q.sum(-1, keepdim=True).clamp_min(1e-30)
    return torch.nn.functional.pad(q, (0, vocab_size - q.shape[-1]))
