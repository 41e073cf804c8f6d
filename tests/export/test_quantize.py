"""specviz/export/quantize.py: weights stored in fewer bits, the same graph contract, exact on GGUF grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from specviz.export.ortref import OrtLM
from specviz.export.quantize import BLOCK, quantize

K, N, V = 64, 48, 80  # a [K, N] MatMul weight and a [V, K] embedding table tied to an output layer


def _on_q4_1(rng: np.random.Generator, k: int, n: int) -> np.ndarray:
    """A [k, n] weight on Q4_1's grid: each block of 32 along k is d·q + m, q in 0..15."""
    q = rng.integers(0, 16, (k // BLOCK, BLOCK, n)).astype(np.float32)
    q[:, 0], q[:, 1] = 0, 15  # every block uses its whole range, as GGUF's quantizer makes it
    d = rng.uniform(0.01, 0.1, (k // BLOCK, 1, n)).astype(np.float32)
    m = rng.uniform(-0.5, 0.0, (k // BLOCK, 1, n)).astype(np.float32)
    return (q * d + m).reshape(k, n)


def _on_q8_0(rng: np.random.Generator, v: int, k: int) -> np.ndarray:
    """A [v, k] table on Q8_0's grid along k: d·q, q in −127..127."""
    q = rng.integers(-127, 128, (v, k // BLOCK, BLOCK)).astype(np.float32)
    q[..., 0] = 127
    d = rng.uniform(0.001, 0.01, (v, k // BLOCK, 1)).astype(np.float32)
    return (q * d).reshape(v, k)


def _graph(path: Path, weight: np.ndarray, table: np.ndarray) -> Path:
    """ids [1, T] → Gather(table) → MatMul(weight) → … → MatMul(tableᵀ): the shape of a tied LM."""
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["x"], axis=0),
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Transpose", ["table"], ["table_t"], perm=[1, 0]),
        helper.make_node("Slice", ["h", "zero", "k", "last"], ["hk"]),
        helper.make_node("MatMul", ["hk", "table_t"], ["logits"]),
    ]
    inits = [
        numpy_helper.from_array(weight, "w"),
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([K], np.int64), "k"),
        numpy_helper.from_array(np.array([-1], np.int64), "last"),
    ]
    graph = helper.make_graph(
        nodes,
        "tied",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, None])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, None, V])],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), str(path))
    return path


def _run(path: Path, ids: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"ids": ids})[0]


@pytest.fixture
def ids() -> np.ndarray:
    return np.array([[3, 1, 4, 1, 5, 9, 2, 6]], np.int64)


def test_q4_stores_gguf_weights_exactly(tmp_path: Path, ids: np.ndarray):
    rng = np.random.default_rng(0)
    src = _graph(tmp_path / "fp32.onnx", _on_q4_1(rng, K, N + K), _on_q8_0(rng, V, K))
    counts = quantize(src, tmp_path / "q4.onnx", "q4")
    assert counts == {"exact": 2, "rounded": 0, "weights": K * (N + K) + V * K}
    np.testing.assert_allclose(_run(tmp_path / "q4.onnx", ids), _run(src, ids), rtol=1e-5, atol=1e-5)
    names = {t.name for t in onnx.load(str(tmp_path / "q4.onnx")).graph.initializer}
    assert "w" not in names and "table" not in names  # no float copy of either weight is kept


def test_weights_on_no_grid_are_rounded_to_it(tmp_path: Path, ids: np.ndarray):
    rng = np.random.default_rng(1)
    weight = rng.normal(0, 0.05, (K, N + K)).astype(np.float32)
    table = rng.normal(0, 0.05, (V, K)).astype(np.float32)
    src = _graph(tmp_path / "fp32.onnx", weight, table)
    want = _run(src, ids)
    for quant, tolerance in (("int8", 0.02), ("q4", 0.2)):
        counts = quantize(src, tmp_path / f"{quant}.onnx", quant)
        assert counts["rounded"] == 2 and counts["exact"] == 0
        err = np.abs(_run(tmp_path / f"{quant}.onnx", ids) - want).max() / np.abs(want).max()
        assert 0 < err < tolerance, (quant, err)


def test_int8_keeps_a_q8_0_table_exactly_and_fp32_copies(tmp_path: Path, ids: np.ndarray):
    rng = np.random.default_rng(2)
    src = _graph(tmp_path / "fp32.onnx", _on_q4_1(rng, K, N + K), _on_q8_0(rng, V, K))
    assert quantize(src, tmp_path / "int8.onnx", "int8") == {"exact": 1, "rounded": 1, "weights": K * (N + K) + V * K}
    assert quantize(src, tmp_path / "same.onnx", "fp32") == {"exact": 0, "rounded": 0, "weights": 0}
    assert (tmp_path / "same.onnx").read_bytes() == src.read_bytes()
    with pytest.raises(ValueError, match="fp32, int8, q4"):
        quantize(src, tmp_path / "x.onnx", "q3")


@pytest.mark.slow
@pytest.mark.parametrize(("quant", "smaller", "correlation"), [("int8", 3, 0.999), ("q4", 4, 0.9)])
def test_the_quantized_draft_keeps_the_contract(
    tmp_path: Path, draft_onnx: Path, quant: str, smaller: float, correlation: float
):
    """The draft's trained weights are on no grid: rounded (q4 coarsely: export-live stores it in int8),
    several times smaller, the same inputs and outputs."""
    path = tmp_path / f"draft.{quant}.onnx"
    counts = quantize(draft_onnx, path, quant)
    assert counts["rounded"] > 0 and counts["exact"] == 0
    assert path.stat().st_size < draft_onnx.stat().st_size / smaller
    small, full = OrtLM(path), OrtLM(draft_onnx)
    assert [i.name for i in small.session.get_inputs()] == [i.name for i in full.session.get_inputs()]
    a, _ = small.forward([1, 2, 3, 4], small.empty_cache())
    b, _ = full.forward([1, 2, 3, 4], full.empty_cache())
    assert a.shape == b.shape and np.corrcoef(a.ravel(), b.ravel())[0, 1] > correlation
