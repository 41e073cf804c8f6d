"""bf16 linear layers with their weights reordered once for oneDNN, on a CPU.

torch's bf16 linear on a CPU reorders its weight into oneDNN's blocked layout on every call; for a
one-row pass (the evaluation model alone, the draft) that reorder costs more than the matmul, which is
why bf16 lost to fp32 on one row on a CPU with bf16 units. Reordered once
(`torch.ops.mkldnn._reorder_linear_weight`) and reused (`_linear_pointwise`), the same kernel computes
the same numbers — bit-identical to the unpacked bf16 linear (scripts/prepack.py checks it) — and
one row gets cheaper than fp32 (docs/BENCHMARKS.md, 2026-12-06). Used only where `available()`.

Imports: torch only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["PackedLinear", "available", "packed", "prepack"]


def available() -> bool:
    """Whether this torch build and CPU can run oneDNN's prepacked bf16 linear."""
    ops = torch.ops.mkldnn
    try:
        return bool(
            torch.backends.mkldnn.is_available()
            and hasattr(ops, "_reorder_linear_weight")
            and hasattr(ops, "_linear_pointwise")
            and ops._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):
        return False


def packed(weight: torch.Tensor, bias: torch.Tensor | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """x [..., in] → x @ weight.T (+ bias) [..., out] with `weight` [out, in] (bf16) reordered once."""
    w = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), batch_size=1)  # a hint: decode passes are one row
    return lambda x: torch.ops.mkldnn._linear_pointwise(x, w, bias, "none", [], "")


class PackedLinear(nn.Module):
    """An nn.Linear (bf16, CPU) computing with its weight prepacked. `weight` and `bias` stay as they
    were (the feature draft reads the output layer's rows; state_dict and tying still see them)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self._run = packed(linear.weight, None if linear.bias is None else linear.bias.detach())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x)


def prepack(model: nn.Module) -> int:
    """Replace every bf16 nn.Linear of `model` by a PackedLinear, in place; returns how many."""
    n = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear and child.weight.dtype == torch.bfloat16 and child.weight.device.type == "cpu":
                setattr(module, name, PackedLinear(child))
                n += 1
    return n
