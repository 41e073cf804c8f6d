"""Attention that computes each query row of a pass exactly as a one-token pass computes it: what lets a
verification pass in fast numerics give every position the bits the evaluation model alone gives it
(specviz.models.lm.CausalLM.exact_rows turns it on). Registered with transformers' AttentionInterface
under ROWS_ATTENTION.

Imports: torch, transformers.
"""

from __future__ import annotations

import itertools

import torch
from transformers import AttentionInterface

__all__ = ["ROWS_ATTENTION", "one_query", "rows_attention"]

ROWS_ATTENTION = "specviz_rows"


def one_query(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Attention of one query row over every key given, in float32: query [B, H, 1, D], key/value
    [B, H_kv, S, D] (H a multiple of H_kv: grouped-query heads share a key head, as transformers'
    repeat_kv pairs them) → [B, H, 1, D] in query's dtype.

    softmax(q·kᵀ·scale)·v with two small batched matmuls, scale 1/√D unless given. For one query
    this is 2-3x faster than torch's fused CPU kernel past ~100 keys (a Zen 4 EPYC: 45 against 93 µs
    at 160 keys, docs/BENCHMARKS.md 2026-12-06) and rounds less (float32 scores and weights)."""
    b, h, _, d = query.shape
    hk = key.shape[1]
    q = query.float().reshape(b * hk, h // hk, d)
    # a verification row's keys are a view of the pass's keys (a prefix along the sequence): bmm reads each
    # head's [S, d] block in place, with the same row stride d a copy would have, so nothing is copied
    k = key.float().reshape(b * hk, -1, d)
    v = value.float().reshape(b * hk, -1, d)
    weights = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * (d**-0.5 if scale is None else scale), dim=-1)
    return torch.bmm(weights, v).reshape(b, h, 1, d).to(query.dtype)


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
    Each row attends over only the keys it may see, in order (a chain's: a prefix of the pass's keys, read
    in place; a tree's: gathered run by run), with the call a decode step makes (`one_query`, no mask), so a
    verification pass over a chain or a tree gives every position the bits the evaluation model alone would:
    fused kernels round differently for T > 1.
    Returns ([B, T, H, D], None) as transformers' attention functions do."""
    t, s = query.shape[2], key.shape[2]
    if t > 1:  # converted once for all rows (exact: every bf16 value is a float32 value)
        key, value = key.float(), value.float()
    seen = None if attention_mask is None else _seen(attention_mask, s)
    rows = []
    for i in range(t):
        if seen is None:
            k, v = key[:, :, : s - t + i + 1], value[:, :, : s - t + i + 1]
        else:
            # the seen keys lie in a few runs (the context, then a node's ancestors): copied run by run (one
            # buffer per pass holding the context once measured no faster: docs/BENCHMARKS.md, 2026-12-07 evening)
            k = torch.cat([key[:, :, a:b] for a, b in seen[i]], dim=2)
            v = torch.cat([value[:, :, a:b] for a, b in seen[i]], dim=2)
        rows.append(one_query(query[:, :, i : i + 1], k, v, scaling))
    out = rows[0] if t == 1 else torch.cat(rows, dim=2)
    return out.transpose(1, 2).contiguous(), None


# (the last mask, its key length and shape, its rows' runs of seen keys): a pass's layers share one mask;
# one tuple, swapped whole, so two threads' passes never read each other's half. Masks are built per pass
# (CausalLM.forward_tree) and never changed in place, so the mask object names its runs.
_SEEN: tuple[object, int, tuple[int, ...], list[list[tuple[int, int]]]] = (None, 0, (), [])


def _seen(attention_mask: torch.Tensor, s: int) -> list[list[tuple[int, int]]]:
    """The keys each query row may see, as runs [start, stop) in order, from a 4D mask [1, 1, T, S] (bool,
    or additive: a key is seen where the mask is above half the dtype's minimum). Found once per pass,
    not once per layer. Errors: ValueError for a batch of several masks, or a row that sees no key."""
    global _SEEN
    last = _SEEN
    if last[0] is attention_mask and last[1:3] == (s, tuple(attention_mask.shape)):
        return last[3]
    if attention_mask.shape[0] != 1:
        raise ValueError(f"exact rows take one sequence at a time, not a batch of {attention_mask.shape[0]}")
    rows = attention_mask[0, 0, :, :s]
    seen = (rows if rows.dtype == torch.bool else rows > torch.finfo(rows.dtype).min / 2).tolist()
    runs = []
    for i, row in enumerate(seen):
        row_runs, start = [], 0
        for on, group in itertools.groupby(row):
            stop = start + len(list(group))
            if on:
                row_runs.append((start, stop))
            start = stop
        if not row_runs:
            raise ValueError(f"row {i} of the attention mask sees no key")
        runs.append(row_runs)
    _SEEN = (attention_mask, s, tuple(attention_mask.shape), runs)
    return runs


AttentionInterface.register(ROWS_ATTENTION, rows_attention)
