"""Prompt lookup (n-gram copying) as the drafter: no model, drafts copied from earlier in the text.

Imports: torch, specviz.core.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import torch

from specviz.core.drafting import Proposal, ReadsTokensOnly, chain_tree
from specviz.core.tree import DraftTree, TreeShape, ancestors, children_of, grow
from specviz.core.warp import Sampling

__all__ = ["DEFAULT_LOOKUP_BELOW", "LookupFallback", "NgramDrafter", "continuations"]

# where a draft model's chain copies by default: the best first-draft agreement of the bars 0.5-1.0 tried on
# held-out answers; 0.7 and 0.9 ran alike in a bench (docs/BENCHMARKS.md, 2026-12-06 night); 0: never
DEFAULT_LOOKUP_BELOW = 0.7


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
        return continuations(ids, length, limit, self.min_ngram, self.max_ngram, self.vocab_size)[0]

    def _lookup(self, ids: list[int], gamma: int) -> list[int]:
        conts = self._continuations(ids, gamma, 1)  # the chain copies the latest match only
        return conts[0] if conts else []

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "ngram"}


def continuations(
    ids: list[int], length: int, limit: int, min_ngram: int, max_ngram: int, vocab_size: int
) -> tuple[list[list[int]], int]:
    """What followed the latest `limit` earlier occurrences of the longest n-gram (min_ngram <= n <=
    max_ngram) ending `ids` that has any, latest first, each at most `length` tokens; and that n (0: none).
    A continuation stops before a token id >= vocab_size (one the target cannot score)."""
    for n in range(min(max_ngram, len(ids) - 1), min_ngram - 1, -1):
        tail = ids[-n:]
        found: list[list[int]] = []
        # latest match first: recent text is the likeliest to repeat
        for start in range(len(ids) - n - 1, -1, -1):
            if ids[start : start + n] == tail:
                follow = list(itertools.takewhile(lambda t: t < vocab_size, ids[start + n : start + n + length]))
                if follow:
                    found.append(follow)
                    if len(found) == limit:
                        break
        if found:
            return found, n
    return [], 0


@dataclass(frozen=True)
class LookupFallback:
    """Prompt lookup as a draft model's fallback: where the model is unsure (its best q is below `below`)
    and the last n >= min_ngram tokens occurred earlier, draft the token that followed them instead.

    The choice depends only on the context and the model's q (not on a random draw), so a copied draft
    is a draft from a one-hot q: the sampling rule accepts it with probability p(x), and the output's
    distribution is still the target's. It also drafts tokens outside a reduced draft vocabulary (names,
    numbers from the prompt), which the model alone can never propose. Measured on 300 held-out greedy
    answers (teacher-forced, the default draft): first-draft agreement 56.3% alone, 62.7% with
    below 0.7, min_ngram 2 (docs/BENCHMARKS.md, 2026-12-06 night)."""

    below: float = DEFAULT_LOOKUP_BELOW
    min_ngram: int = 2
    max_ngram: int = 3

    def find(self, ids: list[int], vocab_size: int) -> tuple[int, int] | None:
        """(the copied token, the length of the n-gram matched), or None where nothing earlier matches."""
        found, n = continuations(ids, 1, 1, self.min_ngram, self.max_ngram, vocab_size)
        return (found[0][0], n) if found else None

    def copy(self, ids: list[int], drafted: list[int], own: torch.Tensor) -> tuple[int, int] | None:
        """A chain's draft position: the copy (token, n-gram length) after the context `ids` and the step's
        drafts so far, where the model's own distribution `own` [V] (before warping: greedy's is one-hot)
        has its best q below `below`; else None (the model drafts). The text is joined only then."""
        if float(own.max()) >= self.below:
            return None
        return self.find(ids + drafted, own.shape[-1])

    def graft(self, tree: DraftTree, ids: list[int], depth: int, vocab_size: int) -> DraftTree:
        """The model's greedy draft tree with the copy beside it: what followed the latest earlier
        occurrence of the last 2-3 tokens of `ids` (at most `depth` tokens) is walked down the tree from
        the root; where a node's children lack the next copied token, the rest of the copy hangs there
        as a branch of copied nodes (q one-hot, `copied` = the n-gram matched there). Only where the
        model's own best q at that node is below `below` (a leaf the model never expanded: always).
        Returns `tree` unchanged when nothing matches.

        For greedy and the lossy rules, which test each child on its own: the sampling rule draws a
        node's children from one q without replacement, and a copy is not such a draw."""
        found, n = continuations(ids, depth, 1, self.min_ngram, self.max_ngram, vocab_size) if depth > 0 else ([], 0)
        if not found:
            return tree
        tokens, parents, score = list(tree.token_ids), list(tree.parents), list(tree.score)
        own = tree.q_raw if tree.q_raw is not None else tree.q
        node = -1
        for i, x in enumerate(found[0]):
            kids = children_of(parents, node)
            same = [j for j in kids if tokens[j] == x]
            if same:
                node = same[0]
                continue
            if kids and float(own[kids[0]].max()) >= self.below:
                return tree  # the model is sure of another token here: a copy would likely be wasted
            rest = found[0][i:]
            break
        else:
            return tree  # the model's tree already holds the whole copy
        start = len(tokens)
        hot = torch.zeros(len(rest), tree.q.shape[-1], dtype=tree.q.dtype, device=tree.q.device)
        hot[torch.arange(len(rest)), torch.tensor(rest)] = 1.0
        base = score[node] if node >= 0 and score else 1.0
        for i, x in enumerate(rest):
            tokens.append(x)
            parents.append(node if i == 0 else start + i - 1)
            score.append(base)
        done = len(found[0]) - len(rest)  # copied tokens already in the model's tree
        # as a chain's fallback would report it: the n-gram matched there (the copied tokens extend it)
        copied = (list(tree.copied) or [0] * start) + [min(self.max_ngram, n + done + i) for i in range(len(rest))]
        return DraftTree(
            tokens,
            parents,
            torch.cat([tree.q, hot]),
            None if tree.q_raw is None else torch.cat([tree.q_raw, hot.to(tree.q_raw.dtype)]),
            score if tree.score else [],
            None,  # it drafted something now
            copied,
        )

    def meta(self) -> dict[str, Any]:
        return {"below": self.below, "min_ngram": self.min_ngram, "max_ngram": self.max_ngram}
