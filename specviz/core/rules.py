"""Acceptance rules: pure functions on probability tensors; randomness comes in as arguments.

Notation: p = target ("evaluation model") distribution, q = draft distribution,
x = drafted token, gamma = number of drafts, r ~ U[0, 1).

Each rule is one RuleKind in KINDS, the one place that says everything about it: its name, its
parameters and their defaults, lossless or not, whether it reads a uniform r, how it tests drafted
tokens (the chain verifies gamma of them at once with Rule.verify, the tree one child at a time in
specviz.core.tree: both call the same test), where the evaluation model's own token comes from, and
whether a tree tests later siblings against what an earlier rejection leaves (sampling). make_rule,
the command line's --rule, the Live page and the decoder take the rules from here; the trace format
(pure stdlib) keeps their names and parameters in specviz.trace.schema.RULE_PARAMS, which a test holds
equal to KINDS. A new rule is a test function and one more RuleKind below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch

__all__ = [
    "KINDS",
    "RULES",
    "Rule",
    "RuleKind",
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


# (accepted [k] bool, the numbers the decision compared, named as Verdict's fields: accept_prob | ratio | cutoff)
Tested = tuple[torch.Tensor, dict[str, torch.Tensor]]
Tensor = torch.Tensor


def _test_sampling(p: Tensor, p_x: Tensor, q_x: Tensor, x: Tensor, r: Tensor, params: Mapping[str, float]) -> Tested:
    accept_prob, accepted = accept_sampling(p_x, q_x, r)
    return accepted, {"accept_prob": accept_prob}


def _test_greedy(p: Tensor, p_x: Tensor, q_x: Tensor, x: Tensor, r: Tensor, params: Mapping[str, float]) -> Tested:
    return accept_greedy(p, x.to(p.device)), {}


def _test_threshold(p: Tensor, p_x: Tensor, q_x: Tensor, x: Tensor, r: Tensor, params: Mapping[str, float]) -> Tested:
    ratio, accepted = accept_threshold(p_x, q_x, params["tau"])
    return accepted, {"ratio": ratio}


def _test_typical(p: Tensor, p_x: Tensor, q_x: Tensor, x: Tensor, r: Tensor, params: Mapping[str, float]) -> Tested:
    # p_x in p's dtype and place: the tree hands its single numbers over as float64 on the CPU
    cutoff, accepted = accept_typical(p, p_x.to(p.device, p.dtype), params["epsilon"], params["delta"])
    return accepted, {"cutoff": cutoff}


@dataclass(frozen=True)
class RuleKind:
    """One acceptance rule: what the chain, the tree, make_rule, the command line and the UI know of it.

    test(p, p_x, q_x, x, r, params) decides k drafted tokens x [k] (long), each against its own row:
    p [k, V] the target's rows, p_x = p(x) and q_x = q(x) [k], r [k] uniforms (read only when
    uses_random). The chain passes its gamma rows at once (float32, on the model's device); the tree
    one child at a time, p_x, q_x and r as float64 on the CPU (a tree step records each child's
    accept_prob and ratio computed in double). Returns (accepted [k] bool, {name: [k]}), the name
    one of Verdict's accept_prob | ratio | cutoff, or nothing when the decision compares no number.
    """

    name: str
    defaults: Mapping[str, float]  # its parameters and their defaults (make_rule fills them)
    lossless: bool  # the output is distributed as the target's own (sampling) or equals it (greedy)
    uses_random: bool  # its test reads r: the trace records r only for such a rule
    # where the evaluation model's own token comes from after a rejection: residual = norm(max(0, p - q))
    # (p when that is empty), p itself, or argmax (a one-hot on p's most likely token, also for the bonus)
    correction: Literal["residual", "p", "argmax"]
    # tree: a later sibling is tested against the distribution the correction would come from and q without
    # the rejected tokens (SpecInfer's multi-round rule); False: every sibling against the same p and q
    recursive: bool
    test: Callable[[Tensor, Tensor, Tensor, Tensor, Tensor, Mapping[str, float]], Tested] = field(repr=False)


KINDS: dict[str, RuleKind] = {
    k.name: k
    for k in (
        # Leviathan et al. 2023; Chen et al. 2023: accept iff r < min(1, p(x)/q(x))
        RuleKind(
            "sampling", {}, lossless=True, uses_random=True, correction="residual", recursive=True, test=_test_sampling
        ),
        # accept iff x is p's argmax; the evaluation model's own token is its argmax too
        RuleKind(
            "greedy", {}, lossless=True, uses_random=False, correction="argmax", recursive=False, test=_test_greedy
        ),
        # lossy: accept iff p(x)/q(x) >= tau
        RuleKind(
            "threshold",
            {"tau": 0.3},
            lossless=False,
            uses_random=False,
            correction="residual",
            recursive=False,
            test=_test_threshold,
        ),
        # lossy, Medusa (Cai et al. 2024): accept iff p(x) > min(epsilon, delta * exp(-H(p))); it never looks at
        # q, and corrects from p
        RuleKind(
            "typical",
            {"epsilon": 0.09, "delta": 0.3},
            lossless=False,
            uses_random=False,
            correction="p",
            recursive=False,
            test=_test_typical,
        ),
    )
}
RULES = tuple(KINDS)


@dataclass(frozen=True)
class Rule:
    """An acceptance rule with its parameters (make_rule fills the defaults). p: [gamma+1, V] (last row: bonus position).

    Raises ValueError for a name that is not in KINDS."""

    name: str
    params: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.name not in KINDS:
            raise ValueError(f"unknown rule {self.name!r}; choose one of {', '.join(RULES)}")

    @property
    def kind(self) -> RuleKind:
        return KINDS[self.name]

    @property
    def lossless(self) -> bool:
        return self.kind.lossless

    @property
    def uses_random(self) -> bool:
        return self.kind.uses_random

    @property
    def recursive(self) -> bool:
        return self.kind.recursive

    def test(self, p: torch.Tensor, p_x: torch.Tensor, q_x: torch.Tensor, x: torch.Tensor, r: torch.Tensor) -> Tested:
        """The rule's decision on k drafted tokens, each against its own row (see RuleKind): p [k, V];
        p_x, q_x, x, r [k]. Returns (accepted [k] bool, {accept_prob | ratio | cutoff: [k]})."""
        return self.kind.test(p, p_x, q_x, x, r, self.params)

    def verify(self, p: torch.Tensor, q: torch.Tensor, draft: torch.Tensor, r: torch.Tensor) -> Verdict:
        """A chain's gamma drafts at once. p: [gamma(+1), V], q: [gamma, V], draft: [gamma] token ids, r: [gamma] uniforms."""
        gamma = draft.numel()
        p = p[:gamma]
        idx = draft.view(-1, 1)
        accepted, numbers = self.test(p, p.gather(-1, idx).view(-1), q.gather(-1, idx).view(-1), draft, r)
        return Verdict(accepted, n_leading(accepted), **numbers)

    def next_distribution(self, p_row: torch.Tensor, q_row: torch.Tensor | None) -> tuple[torch.Tensor, str]:
        """The distribution of the evaluation model's own token after the accepted drafts.

        q_row is the draft's q at the first rejected position, or None when every draft was
        accepted (the bonus token comes from p). Returns (probs, source), source in p|residual|argmax.
        """
        correction = self.kind.correction
        if correction == "argmax":
            return torch.nn.functional.one_hot(p_row.argmax(-1), p_row.shape[-1]).float(), "argmax"
        if q_row is None or correction == "p":
            # the bonus; and Medusa corrects from the target itself: its rule never looked at q
            return p_row, "p"
        if float((p_row - q_row).clamp_min(0).sum()) <= 0:
            return p_row, "p"  # an empty residual (p == q, a lossy rule rejected): residual() falls back to p
        return residual(p_row, q_row), "residual"


def make_rule(name: str, **params: float | None) -> Rule:
    """Build a rule, filling defaults and rejecting parameters it does not take."""
    if name not in KINDS:
        raise ValueError(f"unknown rule {name!r}; choose one of {', '.join(RULES)}")
    merged = dict(KINDS[name].defaults)
    for key, value in params.items():
        if value is None:
            continue
        if key not in merged:
            raise ValueError(f"rule {name!r} takes no parameter {key!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{key} must be a finite number >= 0, got {value}")
        merged[key] = float(value)
    return Rule(name, merged)
