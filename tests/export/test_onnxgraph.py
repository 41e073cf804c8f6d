"""specviz/export/onnxgraph.py: the ONNX graphs with their KV cache against the torch models they came from."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from specviz.export.onnxgraph import export_onnx, input_names, output_names, shape_of
from specviz.export.ortref import OrtLM
from specviz.models.lm import CausalLM

from .conftest import PROMPT

pytestmark = pytest.mark.slow


def _prompt(target: CausalLM, lm: CausalLM) -> list[int]:
    ids = target.encode(PROMPT)
    return lm.token_map.to_draft(ids) if lm.token_map is not None else ids


def _torch_steps(lm: CausalLM, ids: list[int], prefill: int) -> list[np.ndarray]:
    """Logits of a prefill of `prefill` ids, then one pass per remaining id, with the cache."""
    cache = lm.new_cache()
    out = [lm.forward(cache, ids[:prefill]).numpy()]
    out += [lm.forward(cache, [t]).numpy() for t in ids[prefill:]]
    return out


def _onnx_steps(model: OrtLM, ids: list[int], prefill: int) -> list[np.ndarray]:
    logits, cache = model.forward(ids[:prefill], model.empty_cache())
    out = [logits]
    for t in ids[prefill:]:
        logits, cache = model.forward([t], cache)
        out.append(logits)
    return out


def test_the_graph_has_the_contracts_names_shapes_and_types(draft_onnx: Path, embedded_draft: CausalLM):
    model = OrtLM(draft_onnx)
    layers, kv_heads, head_dim = shape_of(embedded_draft)
    inputs, outputs = model.session.get_inputs(), model.session.get_outputs()
    assert [i.name for i in inputs] == input_names(layers)
    assert [o.name for o in outputs] == output_names(layers)
    assert [i.type for i in inputs[:3]] == ["tensor(int64)"] * 3
    assert {i.type for i in inputs[3:]} | {o.type for o in outputs} == {"tensor(float)"}
    assert inputs[3].shape[:2] == [1, kv_heads] and inputs[3].shape[3] == head_dim
    logits, present = model.forward([5, 6, 7], model.empty_cache())  # P = 0
    assert logits.shape == (3, embedded_draft.vocab_size)
    assert [t.shape for t in present] == [(1, kv_heads, 3, head_dim)] * (2 * layers)


@pytest.mark.parametrize("role", ["draft", "target"])
def test_logits_with_the_cache_match_torch(
    role: str, request: pytest.FixtureRequest, embedded_target: CausalLM, embedded_draft: CausalLM
):
    """A prefill of 20 tokens, then 3 steps with the cache: the same logits up to float32 rounding."""
    lm = embedded_target if role == "target" else embedded_draft
    model = OrtLM(request.getfixturevalue(f"{role}_onnx"))
    ids = _prompt(embedded_target, lm)[:23]
    want, got = _torch_steps(lm, ids, 20), _onnx_steps(model, ids, 20)
    diff = max(float(np.abs(g - w).max()) for g, w in zip(got, want, strict=True))
    assert diff < 2e-3, diff
    assert [g.argmax(-1).tolist() for g in got] == [w.argmax(-1).tolist() for w in want]


def test_greedy_decoding_is_token_identical_to_torch(target_onnx: Path, embedded_target: CausalLM):
    ids, model = embedded_target.encode(PROMPT), OrtLM(target_onnx)
    want, cache = [], embedded_target.new_cache()
    logits = embedded_target.forward(cache, ids)
    got, present = [], None
    row, present = model.forward(ids, model.empty_cache())
    for _ in range(12):
        want.append(int(logits[-1].argmax()))
        logits = embedded_target.forward(cache, [want[-1]])
        got.append(int(row[-1].argmax()))
        row, present = model.forward([got[-1]], present)
    assert got == want


def test_rolling_back_is_slicing_the_cache(draft_onnx: Path, embedded_target: CausalLM, embedded_draft: CausalLM):
    """After a pass of 4 ids of which 2 are kept, the next pass equals a fresh pass over the kept prefix."""
    model = OrtLM(draft_onnx)
    ids = _prompt(embedded_target, embedded_draft)[:20]
    _, cache = model.forward(ids[:16], model.empty_cache())
    _, cache = model.forward(ids[16:20], cache)  # 4 "drafts"
    rolled, _ = model.forward([42], OrtLM.crop(cache, 18))
    fresh, _ = model.forward([*ids[:18], 42], model.empty_cache())
    np.testing.assert_allclose(rolled[-1], fresh[-1], atol=1e-4)


def test_only_float32_on_the_cpu_exports(tmp_path: Path, target: CausalLM):
    """The browser computes in float32: a bf16 model is refused before anything is written."""
    bf16 = dataclasses.replace(target, model=copy.deepcopy(target.model).to(torch.bfloat16))
    with pytest.raises(ValueError, match="float32"):
        export_onnx(bf16, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
