"""torch's own low-bit weight-only linears on a CPU: int8 per output row, int4 in groups of 32.

An option, not a default (docs/BENCHMARKS.md, 2026-12-06, issue 20 item 5): with weights in 8 or 4 bits a
one-token pass gets cheaper, but a pass over k positions grows with k, so verification is no longer
nearly free — the same trade-off llama.cpp's 4-bit blocks show. `load_model(..., weights="int4")`
(`--weights` of `bench` and `run`) loads the evaluation model so; `scripts/pass_cost.py --lowbit` times
them next to float32 and bf16. Both kernels compute each row alone (row-invariant), so a verification
pass with one-token attention rows gives each position the bits the model alone gives it.

- int8: w ≈ q · s, q int8 [out, in], s [out] = max|w_row| / 127 (gpt-fast's weight-only int8);
  `torch.ops.aten._weight_int8pack_mm`, bf16 activations (its float32 path is a slow fallback here).
- int4: w ≈ (q − 8) · s + z per group of 32 inputs, q in 0..15, s = (max − min) / 15, z = min + 8 s
  (tinygemm's convention); `_weight_int4pack_mm_for_cpu`, bf16 activations.

Imports: torch, the prepacked linear it replaces.
"""

from __future__ import annotations

import torch
from torch import nn

from specviz.models.prepack import PackedLinear

__all__ = ["LAYERS", "WORDS", "Int4Linear", "Int8Linear", "available", "quantize_weights"]

GROUP = 32  # int4 group size along the input dimension
# the weights a CausalLM can load with, in its meta's words
WORDS = {
    "int8": "int8 weight-only (a scale per output row), bfloat16 activations",
    "int4": "int4 weight-only (groups of 32 with a scale and zero), the output layer int8, bfloat16 activations",
}


def available(bits: int) -> bool:
    """Whether this torch build has the CPU kernel for `bits` (8 or 4) weight-only linears."""
    ops = torch.ops.aten
    names = {8: ("_weight_int8pack_mm",), 4: ("_convert_weight_to_int4pack_for_cpu", "_weight_int4pack_mm_for_cpu")}
    return all(hasattr(ops, n) for n in names[bits])


class Int8Linear(nn.Module):
    """x [..., in] → x @ w.T [..., out] with w stored as int8 rows and one bf16 scale per row."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        scale = w.abs().amax(1).clamp(min=1e-12) / 127
        self.register_buffer("q", torch.round(w / scale[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.weight, self.bias = linear.weight, linear.bias  # readers of the shape (vocab size) still see it

    def dequantized(self) -> torch.Tensor:
        """The weight this layer computes with, [out, in] float32."""
        return self.q.float() * self.scale.float()[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int8pack_mm(x.reshape(-1, x.shape[-1]).to(torch.bfloat16), self.q, self.scale)
        y = y.reshape(*x.shape[:-1], -1).to(x.dtype)
        return y if self.bias is None else y + self.bias


class Int4Linear(nn.Module):
    """x [..., in] → x @ w.T [..., out] with w in 4-bit groups of 32 inputs (`in` must divide by 32)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        w = linear.weight.detach().float()
        out_f, in_f = w.shape
        if in_f % GROUP:
            raise ValueError(f"int4 needs in_features divisible by {GROUP}, got {in_f}")
        groups = w.reshape(out_f, in_f // GROUP, GROUP)
        lo, hi = groups.amin(-1), groups.amax(-1)
        scale = (hi - lo).clamp(min=1e-12) / 15
        q = torch.round((groups - lo[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32)
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.reshape(out_f, in_f), 2))
        zero = lo + 8 * scale
        self.register_buffer(
            "scale_zero", torch.stack([scale, zero], -1).transpose(0, 1).contiguous().to(torch.bfloat16)
        )
        self.weight, self.bias = linear.weight, linear.bias  # readers of the shape (vocab size) still see it

    def dequantized(self) -> torch.Tensor:
        """The weight this layer computes with, [out, in] float32."""
        # the kernel on one-hot rows reads the weights back (bf16-rounded), so no unpacked copy is kept
        eye = torch.eye(self.weight.shape[1], dtype=torch.bfloat16)
        w = torch.ops.aten._weight_int4pack_mm_for_cpu(eye, self.packed, GROUP, self.scale_zero)
        return w.float().T.contiguous()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1]).to(torch.bfloat16)
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, self.packed, GROUP, self.scale_zero)
        y = y.reshape(*x.shape[:-1], -1).to(x.dtype)
        return y if self.bias is None else y + self.bias


def quantize_weights(model: nn.Module, bits: int) -> int:
    """Replace every nn.Linear (or bf16 PackedLinear) of `model` (CPU) by its `bits`-bit weight-only form,
    in place; returns how many.

    With 4 bits the output layer gets 8: it is the tied embedding, which the embedded GGUF stores at more
    than 4 bits, and 4-bit groups would move its weights by up to 5% of their largest (8 bits: 0.5%, bf16's
    own rounding). Every other layer of the embedded target is Q4_1 in its GGUF (blocks of 32, a scale and a
    minimum), which these groups reproduce up to the bf16 rounding of each group's scale and zero.
    """
    if bits not in (8, 4):
        raise ValueError(f"bits must be 8 or 4, got {bits}")
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    n = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) in (nn.Linear, PackedLinear) and child.weight.device.type == "cpu":
                setattr(module, name, Int8Linear(child) if bits == 8 or child is head else Int4Linear(child))
                n += 1
    return n


LAYERS = (Int8Linear, Int4Linear)  # what models.numerics.row_limit measures as modules
