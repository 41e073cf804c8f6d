"""What the decoder asks of a drafter: the Drafter and TreeDrafter protocols and their Proposal.

Kinds behind one Protocol, as in transformers' candidate generators (specviz.drafters holds them: a
small causal LM, prompt lookup, a feature head that also reads the target's hidden states). A drafter
keeps whatever state it needs between steps; the decoder tells it nothing but the ids it continues
(and, for a feature reader, the target's features).

Imports: torch, specviz.core only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from specviz.core.tree import DraftTree, TreeShape
from specviz.core.warp import Sampling

__all__ = ["Drafter", "Proposal", "ReadsTokensOnly", "TreeDrafter", "chain_tree"]


@dataclass(frozen=True)
class Proposal:
    token_ids: list[int]  # [gamma'] with gamma' <= gamma (prompt lookup may find fewer)
    q: torch.Tensor  # [gamma', V] the draft's warped distribution at each drafted position
    why_empty: str | None = None  # when nothing was drafted: a key of specviz.trace.NO_DRAFT_REASONS
    # [gamma', V] the draft's own (untempered) distribution, when warping changed it; None otherwise
    q_raw: torch.Tensor | None = None
    # [gamma'] per draft: the length of the n-gram a prompt-lookup fallback copied it after; 0: the model's
    # own draft. Empty when the drafter has no fallback.
    copied: list[int] = field(default_factory=list)


@runtime_checkable
class Drafter(Protocol):
    name: str
    # True: the decoder asks the target for its features and hands them over with read_features()
    reads_features: bool
    # which of the target's hidden states: () = the last one (after the final norm); else transformers'
    # hidden_states indices (the input to those layers), concatenated (EAGLE-3's fusion)
    feature_layers: tuple[int, ...]

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
        """Hear the target's hidden states [k, d] ([k, n·d] for n feature_layers) at positions start..start+k-1 of `ids`: after
        the prefill (start 0) and after each verification (the context it read and the accepted
        drafts, never the rejected ones). Called only when reads_features is True."""
        ...

    def meta(self) -> dict[str, Any]:
        """The trace's meta.draft: the drafter's name and kind (model, ngram, or feature with what it reads)."""
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
        """Grow a draft tree continuing `ids` (specviz.core.tree.grow): children drawn from q without
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
        list(proposal.token_ids),
        list(range(-1, n - 1)),
        proposal.q,
        proposal.q_raw,
        score,
        proposal.why_empty,
        list(proposal.copied),
    )


class ReadsTokensOnly:
    """For drafters that see tokens only."""

    reads_features = False
    feature_layers: tuple[int, ...] = ()

    def read_features(self, features: torch.Tensor, start: int) -> None:
        return None
