"""A Llama forward pass without transformers' per-call work, for the small draft model (issue 20, item 3).

A 2-layer draft spends most of a draft position outside its matmuls when it runs through
transformers: building the causal mask, the cache's bookkeeping, the rotary table, module hooks
(1.5-1.9 ms a position against ~0.5 ms of matmuls on a 2-core Xeon; docs/BENCHMARKS.md). Following
gpt-fast's reading of a Llama (a preallocated key/value cache, a rotary table computed once), this
pass computes the same function from the same weights: the loaded transformers modules are called
as they are (plain, prepacked or low-bit linears alike), nothing is copied.

Only the draft uses it: the draft's numerics never decide the output (the rule sees q and p, and q is
whatever this pass computed), while the evaluation model keeps transformers' own forward, which the
exactness tests compare with `generate()`.

Shapes: a pass appends T new positions to a cache holding `n`; logits [T, V] in the model's dtype (CausalLM
makes them float32), hidden [T, d].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LeanCache", "LeanLlama", "rms_norm", "rope", "rope_table"]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm (Zhang & Sennrich 2019) as Llama computes it: in float32, scaled back in x's dtype.

    A sum and in-place scalar steps rather than .mean(): on a CPU, mean's division costs ~4x a sum on
    one row, and a draft pass runs five of these per position."""
    h = x.float()
    scale = (h * h).sum(-1, keepdim=True).mul_(1.0 / h.shape[-1]).add_(eps).rsqrt_()
    return weight * (h * scale).to(x.dtype)


def rope_table(head_dim: int, theta: float, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [length, head_dim] float32 for positions 0..length-1 (RoFormer, Llama's half-split layout)."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    ang = torch.arange(length, dtype=torch.float32, device=device)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], -1)
    return ang.cos(), ang.sin()


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, H, T, hd] by cos, sin [T, hd] (already gathered at the positions)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


@dataclass
class LeanCache:
    """Keys and values [layers, kv_heads, capacity, head_dim] per kind, the first `n` positions in use.

    Capacity doubles when a pass would overflow it (a copy, rare: 256 → 512 → ...)."""

    k: torch.Tensor
    v: torch.Tensor
    n: int = 0

    def ensure(self, extra: int) -> None:
        cap = self.k.shape[2]
        if self.n + extra <= cap:
            return
        new = max(2 * cap, self.n + extra)
        grow = (self.k.shape[0], self.k.shape[1], new - cap, self.k.shape[3])
        self.k = torch.cat([self.k, self.k.new_empty(grow)], 2)
        self.v = torch.cat([self.v, self.v.new_empty(grow)], 2)

    def crop(self, keep: int) -> None:
        """Keep the first `keep` positions (the rest is overwritten by the next pass)."""
        self.n = min(self.n, keep)

    @torch.inference_mode()  # the tensors were made in inference mode: updating them outside it fails
    def gather(self, positions: list[int]) -> None:
        """Keep only the positions listed, in that order (a tree pass's context and accepted path)."""
        index = torch.tensor(positions, dtype=torch.long, device=self.k.device)
        m = len(positions)
        self.k[:, :, :m] = self.k.index_select(2, index)  # index_select copies before the write
        self.v[:, :, :m] = self.v.index_select(2, index)
        self.n = m


class LeanLlama:
    """transformers' LlamaForCausalLM forward (default RoPE, no biases, SiLU MLP), computed directly.

    `model` is a loaded LlamaForCausalLM (duck-typed: .config, .model.layers, .model.norm, .lm_head);
    `eligible(model)` says whether this pass computes that model's function."""

    def __init__(self, model: nn.Module) -> None:
        cfg = model.config
        self.model = model
        self.layers = list(model.model.layers)
        self.heads = int(cfg.num_attention_heads)
        self.kv_heads = int(getattr(cfg, "num_key_value_heads", None) or self.heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads)
        self.eps = float(cfg.rms_norm_eps)
        self.theta = _theta(cfg)
        w = model.model.embed_tokens.weight
        self.cos, self.sin = rope_table(self.head_dim, self.theta, int(cfg.max_position_embeddings), w.device)
        # on a small model each op costs ~10 µs of dispatch whatever its size: q, k, v as one matmul
        # and gate, up as one where they are plain linears (their weights become views of the fused one)
        self.qkv = [_fused(ly.self_attn.q_proj, ly.self_attn.k_proj, ly.self_attn.v_proj) for ly in self.layers]
        self.gate_up = [_fused(ly.mlp.gate_proj, ly.mlp.up_proj) for ly in self.layers]

    @staticmethod
    def eligible(model: nn.Module) -> bool:
        """True for a Llama whose function this pass computes exactly as transformers does."""
        cfg = getattr(model, "config", None)
        rope_type = ((getattr(cfg, "rope_parameters", None) or {}).get("rope_type")) or "default"
        return (
            getattr(cfg, "model_type", None) == "llama"
            and rope_type == "default"
            and not getattr(cfg, "attention_bias", False)
            and not getattr(cfg, "mlp_bias", False)
            and getattr(cfg, "hidden_act", None) == "silu"
        )

    def new_cache(self, capacity: int = 256) -> LeanCache:
        w = self.model.model.embed_tokens.weight
        shape = (len(self.layers), self.kv_heads, capacity, self.head_dim)
        return LeanCache(w.new_empty(shape), w.new_empty(shape))

    @torch.inference_mode()
    def forward(
        self,
        cache: LeanCache,
        input_ids: list[int],
        positions: list[int] | None = None,
        mask: torch.Tensor | None = None,
        last: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append input_ids (at `positions`, default n..n+T-1) to the cache; mask [T, n + T] bool (True =
        may attend; None = causal). Returns (logits [last or T, V] in the model's dtype, hidden [T, d])."""
        t, n = len(input_ids), cache.n
        dev = cache.k.device
        cache.ensure(t)
        last_pos = n + t if positions is None else max(positions) + 1
        if last_pos > len(self.cos):  # past max_position_embeddings: transformers goes on, and so do we
            self.cos, self.sin = rope_table(self.head_dim, self.theta, 2 * last_pos, dev)
        if positions is None:  # a chain: consecutive positions, a view of the table
            cos, sin = self.cos[n : n + t], self.sin[n : n + t]
        else:
            pos = torch.tensor(positions, device=dev)
            cos, sin = self.cos[pos], self.sin[pos]
        if mask is None and t > 1:
            mask = torch.ones(t, n + t, dtype=torch.bool, device=dev).tril(n)
        elif mask is not None:
            mask = mask.to(dev)
        x = F.embedding(torch.tensor([input_ids], device=dev), self.model.model.embed_tokens.weight)  # [1, T, d]
        hd, gqa = self.head_dim, self.kv_heads != self.heads
        nq, nkv = self.heads * hd, self.kv_heads * hd
        for i, layer in enumerate(self.layers):
            att = layer.self_attn
            h = rms_norm(x, layer.input_layernorm.weight, self.eps)
            if (qkv := self.qkv[i]) is not None:
                q, k, v = F.linear(h, qkv).split((nq, nkv, nkv), -1)
            else:
                q, k, v = att.q_proj(h), att.k_proj(h), att.v_proj(h)
            q = rope(q.view(1, t, self.heads, hd).transpose(1, 2), cos, sin)
            cache.k[i, :, n : n + t] = rope(k.view(1, t, self.kv_heads, hd).transpose(1, 2), cos, sin)[0]
            cache.v[i, :, n : n + t] = v.view(t, self.kv_heads, hd).transpose(0, 1)
            keys, values = cache.k[i, :, : n + t][None], cache.v[i, :, : n + t][None]
            a = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, scale=att.scaling, enable_gqa=gqa)
            x = x + att.o_proj(a.transpose(1, 2).reshape(1, t, -1))
            mlp = layer.mlp
            h = rms_norm(x, layer.post_attention_layernorm.weight, self.eps)
            if (gu := self.gate_up[i]) is not None:
                gate, up = F.linear(h, gu).chunk(2, -1)
            else:
                gate, up = mlp.gate_proj(h), mlp.up_proj(h)
            x = x + mlp.down_proj(F.silu(gate) * up)
        cache.n = n + t
        hidden = rms_norm(x, self.model.model.norm.weight, self.eps)[0]
        return self.model.lm_head(hidden[-last:] if last else hidden), hidden


def _fused(*linears: nn.Module) -> torch.Tensor | None:
    """The weights of plain bias-free linears stacked [sum(out), in], or None (prepacked, low-bit, biased).
    Each linear's weight becomes a view of the stacked tensor: no second copy, and one set of numbers."""
    if not all(type(m) is nn.Linear and m.bias is None for m in linears):
        return None
    fused = torch.cat([m.weight.detach() for m in linears])
    start = 0
    for m in linears:
        rows = m.weight.shape[0]
        m.weight = nn.Parameter(fused[start : start + rows], requires_grad=m.weight.requires_grad)
        start += rows
    return fused


def _theta(cfg: object) -> float:
    rope_params = getattr(cfg, "rope_parameters", None) or {}
    return float(rope_params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
