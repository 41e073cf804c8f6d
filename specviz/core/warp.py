"""Logits → probabilities, and sampling with a random number passed in.

The same warping (temperature, top-k, top-p) is applied to the draft's q and the target's p:
the acceptance rules compare the two distributions the models would actually sample from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["UNTEMPERED", "Sampling", "sample", "warp"]

_F32_MAX = float(torch.finfo(torch.float32).max)


@dataclass(frozen=True)
class Sampling:
    """How logits become a distribution. temperature 0 means greedy (one-hot on the argmax)."""

    temperature: float = 1.0
    top_k: int = 0  # 0 = no top-k cut
    top_p: float = 1.0  # 1.0 = no nucleus cut

    def __post_init__(self) -> None:
        if not self.temperature >= 0 or self.temperature == float("inf"):  # also refuses NaN
            raise ValueError(f"temperature must be a finite number >= 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def identity(self) -> bool:
        """True when warping changes nothing: temperature 1, no top-k, no top-p (p is the model's own)."""
        return self.temperature == 1.0 and self.top_k == 0 and self.top_p == 1.0

    @property
    def greedy(self) -> bool:
        """Temperature 0, or one so small that float32 logits / T overflow (below ~3e-39): argmax."""
        return self.temperature == 0 or 1.0 / self.temperature > _F32_MAX


UNTEMPERED = Sampling()  # the model's own distribution, logged beside the warped one when they differ


def warp(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """[..., V] logits → [..., V] float32 probabilities."""
    logits = logits.float()
    if sampling.greedy:
        # argmax picks the first maximum, as Hugging Face's greedy search does
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    # shift so the largest logit is 0 first: a temperature too small to represent (1e-40) then gives
    # 0 / T = 0 for the maximum and -inf for the rest, i.e. greedy, instead of inf - inf = NaN
    logits = (logits - logits.amax(-1, keepdim=True)) / sampling.temperature
    if sampling.top_k and sampling.top_k < logits.shape[-1]:
        kth = torch.topk(logits, sampling.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        # stable: tied tokens keep id order, so which of a tie top-p keeps is defined (the browser's JS agrees)
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
        sorted_probs = sorted_logits.softmax(-1)
        # drop a token when the tokens strictly before it already cover top_p (the first always stays)
        drop_sorted = (sorted_probs.cumsum(-1) - sorted_probs) > sampling.top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits.softmax(-1)


def sample(probs: torch.Tensor, u: float) -> int:
    """Inverse-CDF draw from a [V] distribution with the uniform number u in [0, 1)."""
    cdf = probs.double().cumsum(-1)
    target = torch.tensor([u * float(cdf[-1])], dtype=cdf.dtype)
    idx = int(torch.searchsorted(cdf, target, right=True)[0])
    idx = min(idx, probs.shape[-1] - 1)
    # float round-off at the top end could land on a zero-probability tail token: step back
    while probs[idx] <= 0 and idx > 0:
        idx -= 1
    return idx
