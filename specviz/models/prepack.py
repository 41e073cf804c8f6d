"""Linear layers with their weights reordered once for oneDNN, on a CPU: every bf16 linear, and a
float32 model's output layer where this machine measures it faster.

torch's bf16 linear on a CPU reorders its weight into oneDNN's blocked layout on every call; for a
one-row pass (the evaluation model alone, the draft) that reorder costs more than the matmul, which is
why bf16 lost to fp32 on one row on a CPU with bf16 units. Reordered once
(`torch.ops.mkldnn._reorder_linear_weight`) and reused (`_linear_pointwise`), the same kernel computes
the same numbers — bit-identical to the unpacked bf16 linear (scripts/prepack.py checks it) — and
one row gets cheaper than fp32 (docs/BENCHMARKS.md, 2026-12-06). Used only where `available()`.

float32 output layer (576 → 49,152 for the embedded target, a fifth of its weights): torch's own
float32 linear (MKL) takes 2-3.5x as long on 4-9 rows as on one, which is most of what makes a wide
verification pass dear in float32; oneDNN's kernel with the weight reordered once for a few rows took
about the same on one row and ~1.4x on nine (docs/BENCHMARKS.md, 2026-12-06 night). `pack_output` measures
both on the model's own layer at load and keeps oneDNN only where it was faster.

Imports: torch only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

__all__ = [
    "OUTPUT_BATCH",
    "PackedLinear",
    "available",
    "available_fp32",
    "pack_output",
    "packed",
    "prepack",
    "unpacked",
]


def available() -> bool:
    """Whether this torch build and CPU can run oneDNN's prepacked bf16 linear."""
    try:
        return available_fp32() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def available_fp32() -> bool:
    """Whether this torch build can run oneDNN's prepacked float32 linear (numerics.packs_output times it)."""
    ops = torch.ops.mkldnn
    try:
        return bool(
            torch.backends.mkldnn.is_available()
            and hasattr(ops, "_reorder_linear_weight")
            and hasattr(ops, "_linear_pointwise")
        )
    except (AttributeError, RuntimeError):
        return False


def packed(
    weight: torch.Tensor, bias: torch.Tensor | None = None, batch_size: int = 1
) -> Callable[[torch.Tensor], torch.Tensor]:
    """x [..., in] → x @ weight.T (+ bias) [..., out] with `weight` [out, in] (bf16 or float32) reordered
    once; batch_size is oneDNN's hint for the rows a call will have (decode passes: one)."""
    w = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), batch_size=batch_size)
    return lambda x: torch.ops.mkldnn._linear_pointwise(x, w, bias, "none", [], "")


class PackedLinear(nn.Module):
    """An nn.Linear (bf16, CPU) computing with its weight prepacked. `weight` and `bias` stay as they
    were (the feature draft reads the output layer's rows; state_dict and tying still see them)."""

    # compute a one-row input as the first row of a two-row call: where this CPU's one-row kernel rounds
    # otherwise than its wider ones (numerics.row_limit with pad_one; set by CausalLM.exact_rows)
    pad_one: bool = False

    def __init__(self, linear: nn.Linear, batch_size: int = 1) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight, self.bias = linear.weight, linear.bias
        self._run = packed(linear.weight, None if linear.bias is None else linear.bias.detach(), batch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_one and x.dim() >= 2 and x.numel() == x.shape[-1]:
            return self._run(torch.cat([x, torch.zeros_like(x)], dim=-2))[..., :1, :]
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


OUTPUT_BATCH = 8  # oneDNN's hint for the float32 output layer: verification passes score a few rows


def pack_output(model: nn.Module) -> dict[str, object] | None:
    """Give a float32 model (CPU) its output layer prepacked for oneDNN (load_model calls this where
    numerics.packs_output() measured it faster on this machine). Checks on the layer's own weight that
    both agree to float32 rounding first. Returns {"packed": True}, {"packed": False, "error": ...} (torch's
    layer kept: a oneDNN failure never fails a load), or None where nothing applies."""
    head = model.get_output_embeddings()
    if not (type(head) is nn.Linear and head.weight.dtype == torch.float32 and head.weight.device.type == "cpu"):
        return None
    if not available_fp32():
        return None
    x = torch.randn(OUTPUT_BATCH, head.in_features, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            candidate = PackedLinear(head, OUTPUT_BATCH)
            want = head(x)
            if not torch.allclose(candidate(x), want, rtol=1e-4, atol=1e-4 * float(want.abs().max())):
                return {"packed": False, "error": "oneDNN's output differs from torch's beyond float32 rounding"}
    except RuntimeError as exc:
        return {"packed": False, "error": str(exc)[:200]}
    model.set_output_embeddings(candidate)
    return {"packed": True}


@contextlib.contextmanager
def unpacked(model: nn.Module) -> Iterator[None]:
    """Plain nn.Linear layers in place of PackedLinear ones (same weights) for the block: exporters
    (ONNX) cannot trace oneDNN's prepacked ops."""
    swapped: list[tuple[nn.Module, str, PackedLinear]] = []
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, PackedLinear):
                plain = nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
                plain.weight, plain.bias = child.weight, child.bias
                setattr(module, name, plain)
                swapped.append((module, name, child))
    try:
        yield
    finally:
        for module, name, child in swapped:
            setattr(module, name, child)
