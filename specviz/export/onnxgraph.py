"""A causal LM → one ONNX file with an explicit KV cache, so a browser (onnxruntime-web) can decode with it.

The I/O contract (specviz/assets/live's JS adapter is written against exactly these names; L layers,
H key/value heads, D head dim, V the model's own output vocabulary, P cached positions, T new ones):

    inputs   input_ids                    int64   [1, T]
             attention_mask               int64   [1, P + T]   all ones
             position_ids                 int64   [1, T]       P, P+1, ..., P+T-1
             past_key_values.{i}.key      float32 [1, H, P, D] for i in 0..L-1 (P may be 0)
             past_key_values.{i}.value    float32 [1, H, P, D]
    outputs  logits                       float32 [1, T, V]    (a reduced-vocabulary draft: over its own ids)
             present.{i}.key              float32 [1, H, P + T, D]
             present.{i}.value            float32 [1, H, P + T, D]

The graph is purely causal over positions and holds no state besides the cache, so rolling back
after a rejection is slicing every present along axis 2 to the kept length. Attention is exported
in its eager form (MatMul, Softmax): plain opset-18 operators that every onnxruntime build runs.

How: torch.onnx.export (dynamo) of a small wrapper that turns the flat past tensors into the
model's own KV cache (CausalLM.new_cache), runs the model, and returns the cache's layers flat.

Imports: torch, onnx (at export), specviz.models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import torch

from specviz.models.lm import CausalLM
from specviz.models.prepack import unpacked

__all__ = ["OPSET", "Shape", "export_onnx", "input_names", "output_names", "shape_of"]

# 18: all a Llama graph needs, and what every recent onnxruntime-web release runs
OPSET = 18
MAX_POSITIONS = 8192  # the dynamic axes' upper bound: the embedded pair's max_position_embeddings


class Shape(NamedTuple):
    """A model's KV cache: per layer, a key and a value of [1, kv_heads, positions, head_dim]."""

    layers: int
    kv_heads: int
    head_dim: int


def shape_of(lm: CausalLM) -> Shape:
    """The cache shape of a Llama-like model, read from its config."""
    cfg = lm.model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    return Shape(int(cfg.num_hidden_layers), int(kv), int(head_dim))


def input_names(layers: int) -> list[str]:
    """The graph's inputs, in order."""
    past = [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    return ["input_ids", "attention_mask", "position_ids", *past]


def output_names(layers: int) -> list[str]:
    """The graph's outputs, in order."""
    return ["logits", *[f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]]


class _FlatCache(torch.nn.Module):
    """model(ids, mask, positions, k0, v0, k1, v1, ...) → (logits, k0', v0', ...): the cache as plain tensors."""

    def __init__(self, lm: CausalLM, layers: int) -> None:
        super().__init__()
        self.lm, self.model, self.layers = lm, lm.model, layers

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        cache = self.lm.module_cache()
        for i in range(self.layers):  # the first update of a layer stores the past as it is
            cache.update(past[2 * i], past[2 * i + 1], i)
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=True,
        )
        flat = [t for layer in cache.layers for t in (layer.keys, layer.values)]
        return (out.logits.float(), *flat)


@contextlib.contextmanager
def _eager_attention(lm: CausalLM) -> Iterator[None]:
    """Export attention as MatMul + Softmax and plain linears; put the model's own back after."""
    before = lm.model.config._attn_implementation
    lm.model.set_attn_implementation("eager")
    try:
        with unpacked(lm.model):  # oneDNN's prepacked ops do not export: plain linears, same weights
            yield
    finally:
        lm.model.set_attn_implementation(before)


def export_onnx(lm: CausalLM, path: Path) -> Path:
    """Write `lm` (float32, on the CPU) to `path` as one ONNX file (no external data; ≤ 2 GB) under the
    contract above. Takes ~10 s for the embedded draft and ~90 s for the embedded target on 2 cores.

    Raises ValueError for a model that is not float32 on the CPU (the browser computes in float32),
    and whatever torch.onnx raises for a model it cannot export."""
    if lm.dtype != torch.float32 or lm.device.type != "cpu":
        raise ValueError(f"export needs the model in float32 on the CPU, not {lm.dtype} on {lm.device}")
    shape = shape_of(lm)
    past_len, new_len = (
        3,
        2,
    )  # example sizes: not 0 or 1, which torch.export would fix as constants; P = 0 runs all the same
    ids = torch.zeros((1, new_len), dtype=torch.long)
    mask = torch.ones((1, past_len + new_len), dtype=torch.long)
    pos = torch.arange(past_len, past_len + new_len)[None]
    past = tuple(torch.zeros((1, shape.kv_heads, past_len, shape.head_dim)) for _ in range(2 * shape.layers))
    dim = torch.export.Dim
    seq, total, cached = (dim(name, min=1, max=MAX_POSITIONS) for name in ("seq", "total", "past"))
    dynamic = ({1: seq}, {1: total}, {1: seq}, tuple({2: cached} for _ in past))
    path.parent.mkdir(parents=True, exist_ok=True)
    with _eager_attention(lm), torch.no_grad():
        torch.onnx.export(
            _FlatCache(lm, shape.layers).eval(),
            (ids, mask, pos, *past),
            str(path),
            input_names=input_names(shape.layers),
            output_names=output_names(shape.layers),
            dynamic_shapes=dynamic,
            dynamo=True,
            opset_version=OPSET,
            external_data=False,
            optimize=True,
            verbose=False,
        )
    return path
