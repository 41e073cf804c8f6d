"""Smaller ONNX files for the browser: weights stored in fewer bits, computed in float32.

Each large weight (a MatMul's constant B, the embedding table a Gather reads) is replaced by
blocks of 32 small integers and a float scale (and offset) per block, plus a few plain opset-18
operators (BitwiseAnd, BitShift, Concat, Cast, Mul, Add, Reshape) that turn them back into the
float32 weight under its old name. Those operators read only constants, so onnxruntime's constant
folding (a basic graph optimization, on by default in onnxruntime and onnxruntime-web) computes them
once when the session loads: the download shrinks, each pass runs float32 MatMuls at float32 speed,
and the I/O contract (specviz.export.onnxgraph) does not change.

    fp32  the export as it is (the embedded target: ~540 MB, too big to send to a class)
    int8  every weight int8 in blocks of 32, symmetric (GGUF's Q8_0 layout): ~1.13 bytes a weight
    q4    every weight 4-bit in blocks of 32 with a scale and a minimum (GGUF's Q4_1 layout): ~0.75 bytes
          a weight; a weight that already sits on the 8-bit grid stays 8-bit

The embedded target *is* a GGUF (Q4_1 layers, a Q8_0 token table tied to its output layer), so its
weights already sit on these grids, and a layout that matches stores them exactly: q4 gives the
same numbers as fp32 at a fifth of the size. Weights on no grid (the trained draft) are rounded to
the nearest grid point. onnxruntime's own quantizers measured worse here (quantize_dynamic's int8
activations part from the model within a few tokens; MatMulNBits is slow in onnxruntime-web's
wasm build): docs/results/onnx-export.json and docs/BROWSER.md.

Imports: numpy, onnx.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["BLOCK", "DEFAULT_QUANT", "QUANTS", "quantize", "quantize_model"]

QUANTS = ("fp32", "int8", "q4")
# the embedded pair's default: identical tokens to fp32 at ~1/5 of the size (docs/results/onnx-export.json)
DEFAULT_QUANT = "q4"
BLOCK = 32  # values per block: GGUF's (Q4_1, Q8_0), so the embedded target's weights fit exactly
_TOLERANCE = 1e-5  # float32 rounding of d·q + m, relative to the weight's largest value
_SMALL = 4096  # smaller weights (norms, rotary tables) stay float32: nothing to save


def _on_grid4(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """blocks [B, 32, N] → (q uint8 in 0..15, d [B, 1, N], m [B, 1, N], exact) with blocks ≈ d·q + m
    (Q4_1: the block's minimum and 1/15 of its range); exact when the blocks were already on that grid."""
    lo, hi = blocks.min(axis=1, keepdims=True), blocks.max(axis=1, keepdims=True)
    d = np.where(hi > lo, (hi - lo) / 15.0, 1.0).astype(np.float32)
    q = np.clip(np.rint((blocks - lo) / d), 0, 15)
    exact = bool(np.abs(q * d + lo - blocks).max() <= _TOLERANCE * np.abs(blocks).max())
    return q.astype(np.uint8), d, lo.astype(np.float32), exact


def _on_grid8(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """blocks [B, 32, N] → (q int8 in −127..127, d [B, 1, N], exact) with blocks ≈ d·q (Q8_0)."""
    d = (np.abs(blocks).max(axis=1, keepdims=True) / 127.0).astype(np.float32)
    d = np.where(d > 0, d, 1.0).astype(np.float32)
    q = np.clip(np.rint(blocks / d), -127, 127)
    exact = bool(np.abs(q * d - blocks).max() <= _TOLERANCE * np.abs(blocks).max())
    return q.astype(np.int8), d, exact


def _dequant4(name: str, out: str, q: np.ndarray, d: np.ndarray, m: np.ndarray) -> tuple[list, dict]:
    """Nodes and constants rebuilding out = d·q + m [B, 32, N] from two 4-bit values a byte."""
    packed = q[:, :16] | (q[:, 16:] << 4)  # [B, 16, N]: the block's first half low, second half high
    nodes = [
        helper.make_node("BitwiseAnd", [f"{name}_p", f"{name}_15"], [f"{name}_lo"]),
        helper.make_node("BitShift", [f"{name}_p", f"{name}_4"], [f"{name}_hi"], direction="RIGHT"),
        helper.make_node("Concat", [f"{name}_lo", f"{name}_hi"], [f"{name}_q"], axis=1),
        helper.make_node("Cast", [f"{name}_q"], [f"{name}_qf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{name}_qf", f"{name}_d"], [f"{name}_qd"]),
        helper.make_node("Add", [f"{name}_qd", f"{name}_m"], [out]),
    ]
    consts = {
        f"{name}_p": np.ascontiguousarray(packed),
        f"{name}_15": np.array(15, np.uint8),
        f"{name}_4": np.array(4, np.uint8),
        f"{name}_d": d,
        f"{name}_m": m,
    }
    return nodes, consts


def _dequant8(name: str, out: str, q: np.ndarray, d: np.ndarray) -> tuple[list, dict]:
    """Nodes and constants rebuilding out = d·q [B, 32, N] from int8."""
    nodes = [
        helper.make_node("Cast", [f"{name}_q8"], [f"{name}_qf"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{name}_qf", f"{name}_d"], [out]),
    ]
    return nodes, {f"{name}_q8": q, f"{name}_d": d}


def _block_axis(uses: list[tuple[onnx.NodeProto, int]]) -> int | None:
    """The axis a weight's blocks run along: the one its MatMuls sum over. A MatMul's B [K, N]: 0; an
    embedding table [V, d] (a Gather's data, maybe also a tied output layer's transposed B): 1.
    None for a weight used any other way (left as it is)."""
    if uses and all(n.op_type == "MatMul" and i == 1 for n, i in uses):
        return 0
    if any(n.op_type == "Gather" and i == 0 for n, i in uses):
        ok = all((n.op_type == "Gather" and i == 0) or n.op_type == "Transpose" for n, i in uses)
        return 1 if ok else None
    return None


def quantize_model(model: onnx.ModelProto, quant: str) -> dict[str, int]:
    """Replace the large float weights of `model` in place (see the module docstring). Returns counts:
    {"exact": weights stored without loss, "rounded": weights rounded to the grid, "weights": how many
    weights those hold}."""
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, i))
    counts = {"exact": 0, "rounded": 0, "weights": 0}
    new_nodes: list[onnx.NodeProto] = []
    for init in list(model.graph.initializer):
        if len(init.dims) != 2 or init.data_type != TensorProto.FLOAT or np.prod(init.dims) < _SMALL:
            continue
        axis = _block_axis(uses.get(init.name, []))
        w = numpy_helper.to_array(init)
        wk = w if axis == 0 else w.T  # [K, N], the blocks along K
        if axis is None or wk.shape[0] % BLOCK:
            continue
        k, n = wk.shape
        blocks = np.ascontiguousarray(wk).reshape(k // BLOCK, BLOCK, n)
        name, tag = init.name, f"{init.name}/specviz"  # tag: the new names, clear of the graph's own
        q8, d8, exact8 = _on_grid8(blocks)
        if quant == "int8" or exact8:
            nodes, consts = _dequant8(tag, f"{tag}_b", q8, d8)
            exact = exact8
        else:
            q4, d4, m4, exact = _on_grid4(blocks)
            nodes, consts = _dequant4(tag, f"{tag}_b", q4, d4, m4)
        consts[f"{tag}_shape"] = np.array([k, n], np.int64)
        nodes.append(helper.make_node("Reshape", [f"{tag}_b", f"{tag}_shape"], [name if axis == 0 else f"{tag}_t"]))
        if axis == 1:  # back to the table's own [V, d]
            nodes.append(helper.make_node("Transpose", [f"{tag}_t"], [name], perm=[1, 0]))
        model.graph.initializer.remove(init)
        model.graph.initializer.extend(numpy_helper.from_array(v, key) for key, v in consts.items())
        new_nodes += nodes
        counts["exact" if exact else "rounded"] += 1
        counts["weights"] += k * n
    for i, node in enumerate(new_nodes):  # first: they read only constants
        model.graph.node.insert(i, node)
    return counts


def quantize(src: Path, dst: Path, quant: str) -> dict[str, int]:
    """Write `src` (an fp32 export) to `dst` in `quant` (one of QUANTS); returns quantize_model's counts
    (all zero for fp32). Raises ValueError for another name. ~10 s for the embedded target on 2 cores."""
    if quant not in QUANTS:
        raise ValueError(f"unknown quantization {quant!r}; choose one of {', '.join(QUANTS)}")
    if quant == "fp32":
        shutil.copyfile(src, dst)
        return {"exact": 0, "rounded": 0, "weights": 0}
    model = onnx.load(str(src))
    counts = quantize_model(model, quant)
    onnx.save(model, str(dst))
    return counts
