"""Attention that computes each query row of a pass exactly as a one-token pass computes it: what lets a
verification pass in fast numerics give every position the bits the evaluation model alone gives it
(specviz.models.lm.CausalLM.exact_rows turns it on). Registered with transformers' AttentionInterface
under ROWS_ATTENTION.

Imports: torch, transformers.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface

__all__ = ["ROWS_ATTENTION", "rows_attention"]

ROWS_ATTENTION = "specviz_rows"


def rows_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    **_: object,
) -> tuple[torch.Tensor, None]:
    """Attention that computes each query row exactly as a one-token pass computes it.

    query [B, H, T, D], key/value [B, H_kv, S, D] (S = past + T); attention_mask None (causal: row i
    sees the first S - T + i + 1 keys) or a 4D mask [B, 1, T, S] (a draft tree's: bool or additive).
    Each row attends over only the keys it may see, gathered in order, with the call a decode step
    makes (one query, no mask), so a verification pass over a chain or a tree gives every position
    the bits the evaluation model alone would: fused SDPA kernels round differently for T > 1.
    Returns ([B, T, H, D], None) as transformers' attention functions do."""
    t, s = query.shape[2], key.shape[2]
    gqa = key.shape[1] != query.shape[1]
    rows = []
    for i in range(t):
        if attention_mask is None:
            k, v = key[:, :, : s - t + i + 1], value[:, :, : s - t + i + 1]
        else:
            row = attention_mask[0, 0, i, :s]
            seen = row if row.dtype == torch.bool else row > torch.finfo(row.dtype).min / 2
            idx = seen.nonzero().squeeze(-1)
            k, v = key.index_select(2, idx), value.index_select(2, idx)
        rows.append(
            torch.nn.functional.scaled_dot_product_attention(
                query[:, :, i : i + 1], k, v, scale=scaling, enable_gqa=gqa
            )
        )
    out = rows[0] if t == 1 else torch.cat(rows, dim=2)
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(ROWS_ATTENTION, rows_attention)
