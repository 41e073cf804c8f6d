"""Drafters propose gamma tokens with their q, then hear how many the target accepted.

Kinds behind one Protocol, as in transformers' candidate generators: a small causal LM (with its
own KV cache, rolled back after a rejection), prompt lookup (n-gram copying), and a feature head
that also reads the target's hidden states (specviz.feature_draft, EAGLE-style).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

from specviz.models import CausalLM
from specviz.tree import DraftTree, TreeShape, ancestors, depths, feed_mask, grow
from specviz.warp import UNTEMPERED, Sampling, sample, warp

__all__ = ["Drafter", "ModelDrafter", "NgramDrafter", "Proposal", "TreeDrafter", "chain_tree"]


@dataclass(frozen=True)
class Proposal:
    token_ids: list[int]  # [gamma'] with gamma' <= gamma (prompt lookup may find fewer)
    q: torch.Tensor  # [gamma', V] the draft's warped distribution at each drafted position
    why_empty: str | None = None  # when nothing was drafted: a key of specviz.trace.NO_DRAFT_REASONS
    # [gamma', V] the draft's own (untempered) distribution, when warping changed it; None otherwise
    q_raw: torch.Tensor | None = None


@runtime_checkable
class Drafter(Protocol):
    name: str
    # True: the decoder asks the target for its features and hands them over with read_features()
    reads_features: bool

    def propose(
        self,
        ids: list[int],
        gamma: int,
        sampling: Sampling,
        generator: torch.Generator,
        min_confidence: float | None = None,
    ) -> Proposal:
        """Draft up to gamma tokens continuing `ids` (prompt + output so far); a drafter with its own
        q may stop after a draft whose q(x) is below min_confidence."""
        ...

    def read_features(self, features: torch.Tensor, start: int) -> None:
        """Hear the target's last hidden states [k, d] at positions start..start+k-1 of `ids`: after
        the prefill (start 0) and after each verification (the context it read and the accepted
        drafts, never the rejected ones). Called only when reads_features is True."""
        ...

    def accepted(self, n_accepted: int) -> None:
        """Hear how many of the last proposal's drafts the target accepted."""
        ...


@runtime_checkable
class TreeDrafter(Protocol):
    """A drafter that can grow a tree of drafts (several candidates per depth) for one step."""

    def propose_tree(
        self,
        ids: list[int],
        shape: TreeShape,
        sampling: Sampling,
        generator: torch.Generator,
        sampled: bool,
        max_depth: int,
    ) -> DraftTree:
        """Grow a draft tree continuing `ids` (specviz.tree.grow): children drawn from q without
        replacement when `sampled` (the sampling rule), else the most likely ones; at most max_depth deep."""
        ...


def chain_tree(proposal: Proposal) -> DraftTree:
    """A chain proposal as a one-branch tree (for a drafter without propose_tree)."""
    n = len(proposal.token_ids)
    score, s = [], 1.0
    for j, x in enumerate(proposal.token_ids):
        s *= float(proposal.q[j, x])
        score.append(s)
    return DraftTree(
        list(proposal.token_ids), list(range(-1, n - 1)), proposal.q, proposal.q_raw, score, proposal.why_empty
    )


class _ReadsNoFeatures:
    """For drafters that see tokens only."""

    reads_features = False

    def read_features(self, features: torch.Tensor, start: int) -> None:
        return None


@dataclass
class ModelDrafter(_ReadsNoFeatures):
    """Drafts autoregressively with a small LM sharing the target's tokenizer."""

    lm: CausalLM
    vocab_size: int  # the target's logits width: q is padded or cut to it
    name: str = ""
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
        """Up to gamma drafts; with min_confidence, stop after a draft whose q(x) is below it."""
        if gamma <= 0:
            return Proposal([], torch.zeros(0, self.vocab_size))
        pending = self._resume(ids)
        tmap = self.lm.token_map
        tokens: list[int] = []
        qs: list[torch.Tensor] = []
        raws: list[torch.Tensor] = []
        for _ in range(gamma):
            logits = self.lm.forward(self._cache, tmap.to_draft(pending) if tmap else pending, last=1)[-1]
            self._cached += pending
            q = self._q(logits, sampling)
            if not sampling.identity:
                raws.append(self._q(logits, UNTEMPERED))
            u = float(torch.rand(1, generator=generator))
            x = sample(q, u)
            tokens.append(x)
            qs.append(q)
            pending = [x]
            if min_confidence is not None and float(q[x]) < min_confidence:
                break  # the draft is unsure: later drafts would likely be wasted
        return Proposal(tokens, torch.stack(qs), q_raw=torch.stack(raws) if raws else None)

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
        level over the nodes that level expands. The tree's own slots leave the cache afterwards."""
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

    def accepted(self, n_accepted: int) -> None:
        # the cache holds context + drafts[:-1]; the next propose() trims it to the new context
        return None


def _fit(q: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Pad (or cut) the draft's distribution to the target's logits width."""
    if q.shape[-1] == vocab_size:
        return q
    if q.shape[-1] > vocab_size:
        q = q[..., :vocab_size]
        return q / q.sum(-1, keepdim=True).clamp_min(1e-30)
    return torch.nn.functional.pad(q, (0, vocab_size - q.shape[-1]))


@dataclass
class NgramDrafter(_ReadsNoFeatures):
    """Prompt lookup: find the latest earlier occurrence of the last n tokens, copy what followed.

    As a chain, q is one-hot on the copied token, so the sampling rule accepts it with probability
    p(x). As a tree (propose_tree), every earlier occurrence gives a candidate and q is how often
    each token follows: several matches become sibling branches.
    """

    vocab_size: int
    max_ngram: int = 3
    min_ngram: int = 1
    max_matches: int = 8  # a tree merges the continuations of at most this many occurrences
    name: str = "prompt lookup (n-gram)"

    def propose(
        self,
        ids: list[int],
        gamma: int,
        sampling: Sampling,
        generator: torch.Generator,
        min_confidence: float | None = None,
    ) -> Proposal:
        """Copy up to gamma tokens; min_confidence is ignored (a one-hot q has nothing to stop on)."""
        tokens = self._lookup(ids, gamma) if gamma > 0 else []
        q = torch.zeros(len(tokens), self.vocab_size)
        if tokens:
            q[torch.arange(len(tokens)), torch.tensor(tokens)] = 1.0
        return Proposal(tokens, q, None if tokens or gamma <= 0 else "no_match")

    def propose_tree(
        self,
        ids: list[int],
        shape: TreeShape,
        sampling: Sampling,
        generator: torch.Generator,
        sampled: bool,
        max_depth: int,
    ) -> DraftTree:
        """Several matches as branches. The continuations of the latest `max_matches` occurrences of
        the longest matching n-gram are merged into a trie; a node's q [V] is the share of the
        continuations through it that go on with each token (ties go to the latest occurrence), so
        one match is the chain's one-hot q and two matches that part ways are two siblings with
        q = 1/2 each. grow() then applies the shape: children drawn from q without replacement under
        the sampling rule (lossless, as for a model draft), the most frequent ones otherwise.
        Sampling settings do not apply: copied text has no temperature. Under the threshold rule a
        node is tested as p/q with this share as q, so a continuation one match in 8 took passes at
        p >= tau/8 (the chain's one-hot q needs p >= tau)."""
        if shape.kind == "chain":  # the decoder drafts chains with propose(); this keeps the call whole
            return chain_tree(self.propose(ids, max_depth, sampling, generator))
        depth = min(max_depth, shape.depth)
        conts = self._continuations(ids, depth, self.max_matches) if depth > 0 else []
        if not conts:
            return DraftTree([], [], torch.zeros(0, self.vocab_size), why_empty="budget" if depth <= 0 else "no_match")

        def after(prefix: list[int]) -> torch.Tensor:
            q = torch.zeros(self.vocab_size)
            for age, c in enumerate(conts):
                if len(c) > len(prefix) and c[: len(prefix)] == prefix:
                    q[c[len(prefix)]] += 1.0 + 1e-3 / (1 + age)  # the latest occurrence wins a tie
            total = q.sum()
            return q / total if total > 0 else q

        def feed(nodes: list[int], tree: DraftTree) -> tuple[torch.Tensor, None]:
            paths = [[tree.token_ids[a] for a in ancestors(tree.parents, j)] for j in nodes]
            return torch.stack([after(path) for path in paths]), None

        return grow(shape, after([]), None, feed, sampled, generator, max_depth)

    def _continuations(self, ids: list[int], length: int, limit: int) -> list[list[int]]:
        """What followed the latest `limit` earlier occurrences of the longest n-gram ending `ids`
        that has any (latest first), each at most `length` tokens."""
        for n in range(min(self.max_ngram, len(ids) - 1), self.min_ngram - 1, -1):
            tail = ids[-n:]
            found: list[list[int]] = []
            # latest match first: recent text is the likeliest to repeat
            for start in range(len(ids) - n - 1, -1, -1):
                if ids[start : start + n] == tail:
                    follow = ids[start + n : start + n + length]
                    # stop at a token the target cannot score rather than leave a gap
                    follow = list(itertools.takewhile(lambda t: t < self.vocab_size, follow))
                    if follow:
                        found.append(follow)
                        if len(found) == limit:
                            break
            if found:
                return found
        return []

    def _lookup(self, ids: list[int], gamma: int) -> list[int]:
        conts = self._continuations(ids, gamma, 1)  # the chain copies the latest match only
        return conts[0] if conts else []

    def accepted(self, n_accepted: int) -> None:
        return None
