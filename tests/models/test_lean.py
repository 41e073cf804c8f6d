"""models.lean: the draft's own Llama pass computes what transformers computes, and its cache behaves."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from specviz.core.decoder import DecodeConfig, speculative_decode, target_decode
from specviz.core.rules import make_rule
from specviz.core.tree import TreeShape, tree_mask, tree_positions
from specviz.core.warp import Sampling
from specviz.drafters.model import ModelDrafter
from specviz.models.lean import LeanCache, LeanLlama
from specviz.models.lm import CausalLM
from specviz.trace.schema import output_ids
from tests.conftest import make_model

TOL = dict(atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def pair(tokenizer) -> tuple[CausalLM, CausalLM]:
    """The same tiny Llama twice: through transformers, and through the lean pass."""
    model = make_model(3, len(tokenizer))
    hf = CausalLM(model, tokenizer, "hf", torch.device("cpu"))
    return hf, dataclasses.replace(hf, lean=LeanLlama(model))


def test_eligible_only_for_plain_llamas(pair) -> None:
    from types import SimpleNamespace

    hf, _ = pair
    assert LeanLlama.eligible(hf.model)
    assert not LeanLlama.eligible(torch.nn.Linear(2, 2))
    plain = dict(model_type="llama", attention_bias=False, mlp_bias=False, hidden_act="silu", rope_parameters={})
    assert LeanLlama.eligible(SimpleNamespace(config=SimpleNamespace(**plain)))
    for change in (
        {"rope_parameters": {"rope_type": "llama3"}},
        {"attention_bias": True},
        {"mlp_bias": True},
        {"hidden_act": "gelu"},
        {"model_type": "qwen2"},
    ):
        assert not LeanLlama.eligible(SimpleNamespace(config=SimpleNamespace(**{**plain, **change}))), change


def test_chain_passes_match_transformers(pair) -> None:
    hf, lean = pair
    a, b = hf.new_cache(), lean.new_cache()
    assert isinstance(b, LeanCache)
    for ids in ([5, 9, 11, 3, 7], [4], [8, 2, 6]):  # a prompt, one token, then a few at once
        torch.testing.assert_close(lean.forward(b, ids), hf.forward(a, ids), **TOL)
    assert lean.cache_length(b) == hf.cache_length(a) == 9
    torch.testing.assert_close(lean.forward(b, [10], last=1), hf.forward(a, [10], last=1), **TOL)


def test_rollback_then_continue(pair) -> None:
    hf, lean = pair
    a, b = hf.new_cache(), lean.new_cache()
    hf.forward(a, [5, 9, 11, 3, 7, 2])
    lean.forward(b, [5, 9, 11, 3, 7, 2])
    hf.rollback(a, 3)
    lean.rollback(b, 3)
    assert lean.cache_length(b) == 3
    torch.testing.assert_close(lean.forward(b, [6, 1]), hf.forward(a, [6, 1]), **TOL)


def test_cache_grows_past_its_capacity_keeping_what_it_held(pair) -> None:
    hf, lean = pair
    b = lean.lean.new_cache(capacity=4)
    a = hf.new_cache()
    for ids in ([3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13]):  # grows twice, with positions already held
        torch.testing.assert_close(lean.forward(b, ids), hf.forward(a, ids), **TOL)
    assert b.k.shape[2] >= 11
    keep = [0, 1, 2, 5, 8]
    hf.keep(a, keep)  # outside inference mode, after growth made new tensors inside it
    lean.keep(b, keep)
    torch.testing.assert_close(lean.forward(b, [14]), hf.forward(a, [14]), **TOL)


def test_positions_past_the_configured_maximum_still_work(pair) -> None:
    hf, lean = pair
    a, b = hf.new_cache(), lean.new_cache()
    hf.forward(a, [5, 9, 11])
    lean.forward(b, [5, 9, 11])
    limit = hf.model.config.max_position_embeddings
    args = ([6, 7], [limit + 10, limit + 11], torch.ones(2, 5, dtype=torch.bool).tril(3))
    torch.testing.assert_close(lean.forward_tree(b, *args)[0], hf.forward_tree(a, *args)[0], **TOL)


def test_tree_pass_and_keep_match_transformers(pair) -> None:
    hf, lean = pair
    a, b = hf.new_cache(), lean.new_cache()
    ctx = [5, 9, 11, 3]
    hf.forward(a, ctx)
    lean.forward(b, ctx)
    parents = [-1, 0, 0, 1]  # node 0 under the root, nodes 1 and 2 under node 0, node 3 under node 1
    past = len(ctx)
    args = ([6, 7, 2, 8, 4], tree_positions(parents, past, 1), tree_mask(parents, past, 1))  # the root, then the nodes
    (la, ha), (lb, hb) = hf.forward_tree(a, *args, features=True), lean.forward_tree(b, *args, features=True)
    torch.testing.assert_close(lb, la, **TOL)
    assert ha is not None and hb is not None
    torch.testing.assert_close(hb, ha, **TOL)
    keep = [0, 1, 2, 3, past, past + 1, past + 2, past + 4]  # the context, the root, nodes 0, 1 and 3
    hf.keep(a, keep)
    lean.keep(b, keep)
    torch.testing.assert_close(lean.forward(b, [6]), hf.forward(a, [6]), **TOL)


@pytest.mark.parametrize("tree", [False, True])
def test_drafting_with_the_lean_pass_proposes_what_transformers_proposes(pair, target, tree) -> None:
    ids = target.encode("the cat sat on", chat=False)
    outs = []
    for lm in pair:  # transformers' pass, then the lean one
        drafter, gen = ModelDrafter(lm, target.vocab_size), torch.Generator().manual_seed(0)
        if tree:
            t = drafter.propose_tree(ids, TreeShape("dynamic", nodes=8, depth=3, topk=2), Sampling(0.7), gen, True, 3)
            outs.append(((t.token_ids, t.parents), t.q))
        else:
            prop = drafter.propose(ids, 4, Sampling(0), gen)
            outs.append((prop.token_ids, prop.q))
    assert outs[0][0] == outs[1][0]
    torch.testing.assert_close(outs[1][1], outs[0][1], **TOL)


def test_speculative_output_with_a_lean_draft_equals_the_target_alone(target, tokenizer) -> None:
    lean_draft = make_model(3, len(tokenizer))
    draft = CausalLM(lean_draft, tokenizer, "lean", torch.device("cpu"), lean=LeanLlama(lean_draft))
    cfg = DecodeConfig(gamma=3, max_new_tokens=24, rule=make_rule("greedy"), sampling=Sampling(0))
    ids = target.encode("the cat sat on", chat=False)
    alone = list(target_decode(target, ids, Sampling(0), 24))
    for shape in (TreeShape(), TreeShape("dynamic", nodes=6, depth=3, topk=2)):
        steps = speculative_decode(
            target, ModelDrafter(draft, target.vocab_size), ids, dataclasses.replace(cfg, tree=shape)
        )
        assert output_ids(steps, target.eos_token_ids, 24) == alone
