"""Prompt lookup (n-gram copying) as the drafter: no model, drafts copied from earlier in the text.

Imports: torch, specviz.core.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch

from specviz.core.drafting import Proposal, ReadsTokensOnly, chain_tree
from specviz.core.tree import DraftTree, TreeShape, ancestors, grow
from specviz.core.warp import Sampling

__all__ = ["NgramDrafter"]


@dataclass
class NgramDrafter(ReadsTokensOnly):
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

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "ngram"}
