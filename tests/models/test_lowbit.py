"""torch's low-bit weight-only linears compute with the weight they say they store."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from specviz.models import lowbit


@pytest.mark.parametrize("bits", [8, 4])
def test_a_lowbit_linear_computes_with_its_dequantized_weight(bits):
    if not lowbit.available(bits):
        pytest.skip(f"this torch build has no CPU int{bits} weight-only kernel")
    torch.manual_seed(0)
    lin = nn.Linear(64, 48, bias=True)
    layer = (lowbit.Int8Linear if bits == 8 else lowbit.Int4Linear)(lin)
    w = layer.dequantized()
    # quantization error: at most half a step per weight
    step = (lin.weight.abs().amax(1, keepdim=True) / 127) if bits == 8 else (2 * lin.weight.abs().max() / 15)
    assert ((w - lin.weight).abs() <= step / 2 + 1e-3).all()
    with torch.inference_mode():
        for shape in ((1, 64), (9, 64), (2, 3, 64)):
            x = torch.randn(shape)
            y = layer(x)
            ref = x.to(torch.bfloat16).float() @ w.T + lin.bias
            assert y.shape == (*shape[:-1], 48) and y.dtype == x.dtype
            torch.testing.assert_close(y, ref, atol=0.05, rtol=0.02)  # bf16 activations


def test_quantize_weights_replaces_every_linear_and_rejects_other_widths():
    model = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Sequential(nn.Linear(32, 8)))
    if not lowbit.available(8):
        pytest.skip("no int8 weight-only kernel")
    assert lowbit.quantize_weights(model, 8) == 2
    assert isinstance(model[0], lowbit.Int8Linear) and isinstance(model[2][0], lowbit.Int8Linear)
    with pytest.raises(ValueError, match="8 or 4"):
        lowbit.quantize_weights(model, 3)
    with pytest.raises(ValueError, match="divisible by 32"):
        lowbit.Int4Linear(nn.Linear(40, 8))


def test_lowbit_weights_take_the_bf16_alias_and_refuse_float32():
    from specviz.models.lm import _lowbit_bits
    from specviz.models.presets import ModelLoadError

    cpu = torch.device("cpu")
    if lowbit.available(8):
        assert _lowbit_bits("int8", cpu, "bf16") == _lowbit_bits("int8", cpu, "bfloat16") == 8
    for dtype in ("float32", "fp32"):
        with pytest.raises(ModelLoadError, match="bfloat16"):
            _lowbit_bits("int8", cpu, dtype)
