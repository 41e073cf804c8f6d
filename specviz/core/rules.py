"""Acceptance rules: pure functions on probability tensors; randomness comes in as arguments.

Notation: p = target ("evaluation model") distribution, q = draft distribution,
x = drafted token, gamma = number of drafts, r ~ U[0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = [
    "RULES",
    "Rule",
    "Verdict",
    "accept_greedy",
    "accept_sampling",
    "accept_threshold",
    "accept_typical",
    "make_rule",
    "n_leading",
    "residual",
]


def accept_sampling(p_x: torch.Tensor, q_x: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Speculative sampling (Leviathan et al. 2023; Chen et al. 2023): accept iff r < min(1, p(x)/q(x)).

    Returns (accept_prob, accepted), both [gamma].
    """
    # x was drawn from q, so q(x) > 0; the guard only keeps a hand-built q from dividing by zero
    accept_prob = torch.where(q_x > 0, (p_x / q_x.clamp_min(1e-30)).clamp(max=1.0), (p_x > 0).float())
    return accept_prob, r < accept_prob


def accept_greedy(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Greedy verification: accept iff x is the target's argmax. p: [gamma, V], x: [gamma]."""
    return p.argmax(-1) == x


def accept_threshold(p_x: torch.Tensor, q_x: torch.Tensor, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Lossy: accept iff p(x)/q(x) >= tau. Returns (ratio, accepted)."""
    ratio = p_x / q_x.clamp_min(1e-30)
    return ratio, ratio >= tau


def accept_typical(
    p: torch.Tensor, p_x: torch.Tensor, epsilon: float, delta: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lossy, Medusa's typical acceptance: accept iff p(x) > min(epsilon, delta * exp(-H(p))).

    Returns (cutoff, accepted).
    """
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)  # [gamma], in nats
    cutoff = torch.minimum(torch.full_like(entropy, epsilon), delta * torch.exp(-entropy))
    return cutoff, p_x > cutoff


def residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """norm(max(0, p - q)): the distribution a correction token is drawn from. [V] → [V].

    When p == q everywhere the residual is empty; a rejection cannot happen then under the
    sampling rule, but lossy rules can reject anyway, so fall back to p.
    """
    diff = (p - q).clamp_min(0)
    total = diff.sum()
    return diff / total if total > 0 else p


def n_leading(accepted: torch.Tensor) -> int:
    """Number of consecutively accepted drafts from the start: [A, A, R, A, A] → 2."""
    rejected = (~accepted.bool()).nonzero()
    return int(rejected[0]) if len(rejected) else int(accepted.numel())


@dataclass(frozen=True)
class Verdict:
    """The outcome of verifying gamma drafts. All tensors are [gamma]."""

    accepted: torch.Tensor  # the rule's decision at every position (bool)
    n_accepted: int
    accept_prob: torch.Tensor | None = None  # sampling: min(1, p/q)
    ratio: torch.Tensor | None = None  # threshold: p/q, compared with tau
    cutoff: torch.Tensor | None = None  # typical: min(epsilon, delta * exp(-H(p)))


@dataclass(frozen=True)
class Rule:
    """An acceptance rule with its parameters. p: [gamma+1, V] (last row: bonus position)."""

    name: str
    params: dict[str, float] = field(default_factory=dict)

    @property
    def lossless(self) -> bool:
        return self.name in ("sampling", "greedy")

    @property
    def uses_random(self) -> bool:
        return self.name == "sampling"

    def verify(self, p: torch.Tensor, q: torch.Tensor, draft: torch.Tensor, r: torch.Tensor) -> Verdict:
        """p: [gamma(+1), V], q: [gamma, V], draft: [gamma] token ids, r: [gamma] uniforms."""
        gamma = draft.numel()
        p = p[:gamma]
        idx = draft.view(-1, 1)
        p_x = p.gather(-1, idx).view(-1)
        q_x = q.gather(-1, idx).view(-1)
        if self.name == "sampling":
            accept_prob, accepted = accept_sampling(p_x, q_x, r)
            return Verdict(accepted, n_leading(accepted), accept_prob=accept_prob)
        if self.name == "greedy":
            accepted = accept_greedy(p, draft)
            return Verdict(accepted, n_leading(accepted))
        if self.name == "threshold":
            ratio, accepted = accept_threshold(p_x, q_x, self.params["tau"])
            return Verdict(accepted, n_leading(accepted), ratio=ratio)
        cutoff, accepted = accept_typical(p, p_x, self.params["epsilon"], self.params["delta"])
        return Verdict(accepted, n_leading(accepted), cutoff=cutoff)

    def next_distribution(self, p_row: torch.Tensor, q_row: torch.Tensor | None) -> tuple[torch.Tensor, str]:
        """The distribution of the evaluation model's own token after the accepted drafts.

        q_row is the draft's q at the first rejected position, or None when every draft was
        accepted (the bonus token comes from p). Returns (probs, source), source in p|residual|argmax.
        """
        if self.name == "greedy":
            return torch.nn.functional.one_hot(p_row.argmax(-1), p_row.shape[-1]).float(), "argmax"
        if q_row is None or self.name == "typical":
            # Medusa corrects from the target itself: its rule never looked at q
            return p_row, "p"
        if float((p_row - q_row).clamp_min(0).sum()) <= 0:
            return p_row, "p"  # an empty residual (p == q, a lossy rule rejected): residual() falls back to p
        return residual(p_row, q_row), "residual"


RULES = ("sampling", "greedy", "threshold", "typical")
_DEFAULTS: dict[str, dict[str, float]] = {
    "sampling": {},
    "greedy": {},
    "threshold": {"tau": 0.3},
    "typical": {"epsilon": 0.09, "delta": 0.3},
}


def make_rule(name: str, **params: float | None) -> Rule:
    """Build a rule, filling defaults and rejecting parameters it does not take."""
    if name not in _DEFAULTS:
        raise ValueError(f"unknown rule {name!r}; choose one of {', '.join(RULES)}")
    merged = dict(_DEFAULTS[name])
    for key, value in params.items():
        if value is None:
            continue
        if key not in merged:
            raise ValueError(f"rule {name!r} takes no parameter {key!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{key} must be a finite number >= 0, got {value}")
        merged[key] = float(value)
    return Rule(name, merged)
