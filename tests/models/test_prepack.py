"""Prepacked bf16 linear layers compute what bf16's own linear computes, bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from specviz.models import prepack

pytestmark = pytest.mark.skipif(not prepack.available(), reason="this torch build or CPU has no oneDNN bf16 linear")


def test_packed_linear_equals_the_bf16_linear_at_every_row_count():
    torch.manual_seed(0)
    lin = nn.Linear(96, 200, bias=True).to(torch.bfloat16)
    packed = prepack.PackedLinear(lin)
    with torch.inference_mode():
        for shape in ((1, 96), (9, 96), (1, 7, 96)):
            x = torch.randn(shape).to(torch.bfloat16)
            assert torch.equal(packed(x), lin(x))
    assert packed.weight is lin.weight  # readers of the weight (the feature draft's output rows) still see it


def test_pad_one_computes_one_row_as_the_first_row_of_two():
    torch.manual_seed(0)
    lin = nn.Linear(1536, 64, bias=False).to(torch.bfloat16)
    packed = prepack.PackedLinear(lin)
    packed.pad_one = True
    with torch.inference_mode():
        for shape in ((1, 1536), (1, 1, 1536)):
            x = torch.randn(shape).to(torch.bfloat16)
            two = torch.cat([x, torch.zeros_like(x)], dim=-2)
            assert packed(x).shape == lin(x).shape
            assert torch.equal(packed(x), packed._run(two)[..., :1, :])
        x = torch.randn(5, 1536).to(torch.bfloat16)
        assert torch.equal(packed(x), lin(x))  # wider calls as before


def test_prepack_replaces_only_bf16_linears(target):
    model = nn.Sequential(nn.Linear(8, 8).to(torch.bfloat16), nn.Linear(8, 8), nn.ReLU())
    assert prepack.prepack(model) == 1
    assert isinstance(model[0], prepack.PackedLinear) and type(model[1]) is nn.Linear


def test_a_prepacked_model_gives_the_same_logits(target):
    import copy

    model = copy.deepcopy(target.model).to(torch.bfloat16).eval()
    ids = torch.tensor([[1, 3, 4, 5, 6, 3, 7]])
    with torch.inference_mode():
        before = model(input_ids=ids).logits
        assert prepack.prepack(model) > 0
        after = model(input_ids=ids).logits
    assert torch.equal(before, after)


def test_a_packed_float32_output_layer_gives_the_same_logits_and_keeps_its_weight(target):
    import copy

    model = copy.deepcopy(target.model).eval()
    head = model.get_output_embeddings()
    ids = torch.tensor([[1, 3, 4, 5, 6, 3, 7]])
    state = torch.random.get_rng_state()
    with torch.inference_mode():
        before = model(input_ids=ids).logits
        assert prepack.pack_output(model) == {"packed": True}
        after = model(input_ids=ids).logits
    assert torch.equal(torch.random.get_rng_state(), state)  # its check uses a generator of its own
    assert isinstance(model.get_output_embeddings(), prepack.PackedLinear)
    assert model.get_output_embeddings().weight is head.weight  # tied readers still see the same rows
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert prepack.pack_output(model) is None  # already packed: nothing applies
    assert prepack.pack_output(copy.deepcopy(target.model).to(torch.bfloat16)) is None  # float32 only


def test_unpacked_gives_plain_linears_for_the_block_and_puts_them_back():
    model = nn.Sequential(prepack.PackedLinear(nn.Linear(8, 8).to(torch.bfloat16)))
    with prepack.unpacked(model):
        assert type(model[0]) is nn.Linear
    assert isinstance(model[0], prepack.PackedLinear)
