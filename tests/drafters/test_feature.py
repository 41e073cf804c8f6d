"""The EAGLE-style feature head: shapes, the feature hand-off, lossless decoding, saving and loading."""

import json

import pytest
import torch

from specviz.core.decoder import DecodeConfig, speculative_decode
from specviz.core.drafting import Drafter
from specviz.core.rules import make_rule
from specviz.core.warp import Sampling
from specviz.drafters.factory import make_drafter
from specviz.drafters.feature import (
    FeatureDrafter,
    FeatureHead,
    FeatureModel,
    HeadConfig,
    load_feature_draft,
    save_head,
)
from specviz.drafters.pair import load_pair
from specviz.models.lm import CausalLM, load_model
from specviz.models.presets import ModelLoadError
from specviz.models.vocab import TokenMap
from specviz.run.record import Recording
from specviz.trace import validate
from tests.core.test_decoder import PROMPT, assert_chi_square_fits, hf_greedy


def tiny_head(target: CausalLM, seed: int = 0, layers: tuple[int, ...] = ()) -> FeatureHead:
    torch.manual_seed(seed)
    cfg = HeadConfig.from_target(target.model.config, "tiny-target")
    head = FeatureHead(HeadConfig(**{**cfg.__dict__, "layers": layers})).eval()
    with torch.no_grad():
        for prm in head.parameters():
            prm.mul_(3.0)  # a peaked head: varied drafts, some accepted, some not
    return head


def tiny_draft(target: CausalLM, token_map: TokenMap | None = None, layers: tuple[int, ...] = ()) -> FeatureModel:
    out = target.model.get_output_embeddings().weight.detach()
    rows = out if token_map is None else out[token_map.target_ids]
    head = tiny_head(target, layers=layers)
    return FeatureModel(head, target.model.get_input_embeddings().weight.detach(), rows, target.vocab_size, token_map)


def test_head_config_reads_the_target_shape(target):
    cfg = HeadConfig.from_target(target.model.config)
    assert (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim) == (32, 4, 2, 8)


def test_cached_passes_equal_one_causal_pass(target):
    head = tiny_head(target)
    d = head.cfg.hidden_size
    feats, embs = torch.randn(1, 7, d), torch.randn(1, 7, d)
    with torch.no_grad():
        full, _ = head(feats, embs, torch.arange(7))
        a, past = head(feats[:, :4], embs[:, :4], torch.arange(4))
        b, past = head(feats[:, 4:6], embs[:, 4:6], torch.arange(4, 6), past)
        c, past = head(feats[:, 6:], embs[:, 6:], torch.arange(6, 7), past)
    assert full.shape == (1, 7, d) and past[0].shape == (1, 2, 7, d // 4)
    torch.testing.assert_close(torch.cat([a, b, c], 1), full, atol=1e-5, rtol=1e-4)


class Spy:
    """Wraps a FeatureDrafter and records every feature hand-off."""

    def __init__(self, inner: FeatureDrafter) -> None:
        self.inner, self.name, self.reads_features, self.calls = inner, inner.name, True, []
        self.feature_layers = inner.feature_layers

    def read_features(self, features, start):
        self.calls.append((features.clone(), start))
        self.inner.read_features(features, start)

    def propose(self, *a, **kw):
        return self.inner.propose(*a, **kw)

    def meta(self):
        return self.inner.meta()


@pytest.mark.parametrize("layers", [(), (0, 2)])
def test_decoder_hands_over_the_features_of_every_kept_position(target, layers):
    """The last hidden states, or for a multi-layer (EAGLE-3) head the states entering its layers."""
    spy = Spy(FeatureDrafter(tiny_draft(target, layers=layers)))
    assert isinstance(spy, Drafter)
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=20)
    steps = list(speculative_decode(target, spy, PROMPT, cfg))
    ids = PROMPT + [
        t for s in steps for t in [d["token_id"] for d in s["draft"][: s["n_accepted"]]] + [s["next"]["token_id"]]
    ]
    # the positions handed over are contiguous from 0, with no gap and no rejected draft
    assert spy.calls[0][1] == 0 and len(spy.calls[0][0]) == len(PROMPT) - 1
    covered = 0
    for feats, start in spy.calls:
        assert start == covered
        covered += len(feats)
    assert covered == len(ids) - 1  # every position but the last token, which no pass has read yet
    # and they are the target's own last hidden states at those positions
    with torch.no_grad():
        x = torch.tensor([ids[:-1]])
        states = target.model(input_ids=x, output_hidden_states=True).hidden_states
        ref = torch.cat([states[i] for i in layers], -1)[0] if layers else states[-1][0]
    got = torch.cat([f for f, _ in spy.calls])
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("gamma", [1, 3, 6])
@pytest.mark.parametrize("rule", ["greedy", "sampling"])
def test_greedy_output_equals_target_generate(target, gamma, rule):
    cfg = DecodeConfig(gamma=gamma, rule=make_rule(rule), sampling=Sampling(0), max_new_tokens=24, seed=3)
    trace = Recording(target, FeatureDrafter(tiny_draft(target)), "", cfg, prompt_ids=PROMPT).run()
    assert trace["output"]["token_ids"] == hf_greedy(target, PROMPT, 24)
    assert validate(trace) == []
    assert trace["meta"]["draft"]["kind"] == "feature" and trace["meta"]["draft"]["layers"] == [-1]


@pytest.mark.parametrize("shape", ["chain", "3,2,1"])
@pytest.mark.parametrize("rule", ["greedy", "sampling"])
def test_the_head_with_the_copy_fallback_is_lossless(target, shape, rule):
    """Where the head is unsure it copies from earlier text (LookupFallback(1.0): wherever a match exists):
    greedy output is still the target's, in chains and trees, and the copies are marked."""
    from specviz.core.tree import TreeShape
    from specviz.drafters.ngram import LookupFallback

    tree = {} if shape == "chain" else {"tree": TreeShape.parse(shape)}
    cfg = DecodeConfig(gamma=3, rule=make_rule(rule), sampling=Sampling(0), max_new_tokens=24, seed=3, **tree)
    drafter = FeatureDrafter(tiny_draft(target), lookup=LookupFallback(1.0))
    trace = Recording(target, drafter, "", cfg, prompt_ids=PROMPT).run()
    assert trace["output"]["token_ids"] == hf_greedy(target, PROMPT, 24)
    assert validate(trace) == [] and trace["meta"]["draft"]["lookup"]["below"] == 1.0
    nodes = [n for s in trace["steps"] for n in (s["tree"]["nodes"] if "tree" in s else s["draft"])]
    assert any(n.get("copied") for n in nodes)


@pytest.mark.parametrize("shape", ["chain", "3,2,1"])
def test_a_multi_layer_head_is_lossless_in_chains_and_trees(target, shape):
    from specviz.core.tree import TreeShape

    tree = {} if shape == "chain" else {"tree": TreeShape.parse(shape)}
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=24, seed=3, **tree)
    drafter = FeatureDrafter(tiny_draft(target, layers=(1, 2)))
    trace = Recording(target, drafter, "", cfg, prompt_ids=PROMPT).run()
    assert trace["output"]["token_ids"] == hf_greedy(target, PROMPT, 24)
    assert validate(trace) == []
    assert trace["meta"]["draft"]["layers"] == [1, 2] and "layers 1, 2" in trace["meta"]["draft"]["reads"]


def test_a_reused_drafter_starts_over_on_a_new_prompt(target):
    drafter = FeatureDrafter(tiny_draft(target))
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=10)
    first = Recording(target, drafter, "", cfg, prompt_ids=PROMPT).run()
    Recording(target, drafter, "", cfg, prompt_ids=[1, 8, 9, 10]).run()
    again = Recording(target, drafter, "", cfg, prompt_ids=PROMPT).run()
    assert [s["draft"] for s in again["steps"]] == [s["draft"] for s in first["steps"]]


def test_one_token_prompt_drafts_nothing_first(target):
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=6)
    trace = Recording(target, FeatureDrafter(tiny_draft(target)), "", cfg, prompt_ids=[1]).run()
    assert trace["steps"][0]["draft"] == [] and len(trace["steps"][1]["draft"]) > 0
    assert trace["steps"][0]["no_draft"] == "no_context"
    assert trace["output"]["token_ids"] == hf_greedy(target, [1], 6)


def test_features_must_not_skip_positions(target):
    drafter = FeatureDrafter(tiny_draft(target))
    drafter.read_features(torch.zeros(3, 32), 0)
    with pytest.raises(ValueError, match="skipped"):
        drafter.read_features(torch.zeros(1, 32), 5)


def test_confidence_stops_the_head_early(target):
    drafter = FeatureDrafter(tiny_draft(target))
    drafter.read_features(target.forward_features(target.new_cache(), PROMPT[:-1])[1], 0)
    gen = torch.Generator().manual_seed(0)
    full = drafter.propose(PROMPT, 6, Sampling(1.0), gen)
    assert len(full.token_ids) == 6
    short = drafter.propose(PROMPT, 6, Sampling(1.0), torch.Generator().manual_seed(0), min_confidence=1.0)
    assert len(short.token_ids) == 1  # no q reaches 1 at temperature 1


def test_reduced_vocabulary_never_proposes_outside_it(target):
    keep = torch.arange(3, 20)
    lookup = torch.full((target.vocab_size,), len(keep), dtype=torch.long)
    lookup[keep] = torch.arange(len(keep))
    tmap = TokenMap(keep, len(keep), lookup)
    cfg = DecodeConfig(gamma=4, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=30, seed=5)
    trace = Recording(target, FeatureDrafter(tiny_draft(target, tmap)), "", cfg, prompt_ids=PROMPT).run()
    drafted = [d["token_id"] for s in trace["steps"] for d in s["draft"]]
    assert drafted and all(3 <= t < 20 for t in drafted)
    assert validate(trace) == []


def test_first_token_distribution_matches_target(target):
    """Speculative sampling with the head is lossless: the first token is distributed as p."""
    gamma, n = 2, 1500
    p = torch.softmax(target.forward(target.new_cache(), PROMPT)[-1], -1).double()
    counts = torch.zeros_like(p)
    draft = tiny_draft(target)
    accepted_first = 0
    for seed in range(n):
        cfg = DecodeConfig(
            gamma=gamma, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=gamma + 1, seed=seed
        )
        step = next(speculative_decode(target, FeatureDrafter(draft), PROMPT, cfg))
        first = step["draft"][0]["token_id"] if step["n_accepted"] > 0 else step["next"]["token_id"]
        accepted_first += step["n_accepted"] > 0
        counts[first] += 1
    assert 0.05 * n < accepted_first < 0.95 * n  # both paths are exercised
    assert_chi_square_fits(counts, p, n)


def test_save_and_load_a_head_for_a_local_target(target, model_dirs, tmp_path):
    head_dir = tmp_path / "head"
    save_head(tiny_head(target), head_dir, [3, 4, 5, 6, 7], {"note": "test"})
    assert json.loads((head_dir / "head_config.json").read_text())["hidden_size"] == 32
    tgt, draft = load_pair(str(model_dirs[0]), str(head_dir), device="cpu")
    assert isinstance(draft, FeatureModel) and draft.out_rows.shape == (5, 32)
    drafter = make_drafter(tgt, draft)
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=12)
    trace = Recording(tgt, drafter, "", cfg, prompt_ids=PROMPT).run()
    assert trace["output"]["token_ids"] == hf_greedy(tgt, PROMPT, 12)


def test_a_head_for_another_width_is_refused(target, model_dirs, tmp_path):
    cfg = HeadConfig.from_target(target.model.config)
    wide = FeatureHead(HeadConfig(**{**cfg.__dict__, "hidden_size": 64, "target": "a wider model"}))
    save_head(wide, tmp_path / "wide", None, {})
    tgt = load_model(str(model_dirs[0]), "cpu")
    with pytest.raises(ModelLoadError, match="width 64"):
        load_feature_draft(tmp_path / "wide", tgt)


def test_a_multi_layer_head_saves_loads_and_is_refused_for_a_shallower_target(target, model_dirs, tmp_path):
    save_head(tiny_head(target, layers=(1, 2)), tmp_path / "fused", None, {})
    assert json.loads((tmp_path / "fused" / "head_config.json").read_text())["layers"] == [1, 2]
    tgt = load_model(str(model_dirs[0]), "cpu")
    draft = load_feature_draft(tmp_path / "fused", tgt)
    assert draft.head.cfg.layers == (1, 2) and draft.head.fuse is not None
    save_head(tiny_head(target, layers=(1, 99)), tmp_path / "deep", None, {})
    with pytest.raises(ModelLoadError, match=r"reads layers \[1, 99\]"):
        load_feature_draft(tmp_path / "deep", tgt)


def test_a_missing_head_says_how_to_get_one(target, tmp_path):
    with pytest.raises(ModelLoadError, match=r"python -m specviz\.train feature"):
        load_feature_draft(tmp_path, target)


@pytest.mark.parametrize("shape", ["1,1,1", "3,2,1", "dynamic:10:4:3"])
def test_feature_trees_are_lossless_and_a_one_branch_tree_is_the_chain(target, shape):
    """The head grows trees with its own tree mask; greedy output equals generate(), and the shape
    1,1,1 drafts exactly what the chain of 3 drafts."""
    from specviz.core.tree import TreeShape

    cfg = DecodeConfig(
        rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=24, seed=3, tree=TreeShape.parse(shape)
    )
    trace = Recording(target, FeatureDrafter(tiny_draft(target)), "", cfg, prompt_ids=PROMPT).run()
    assert trace["output"]["token_ids"] == hf_greedy(target, PROMPT, 24)
    assert validate(trace) == []
    if shape == "1,1,1":
        chain_cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=24, seed=3)
        chain = Recording(target, FeatureDrafter(tiny_draft(target)), "", chain_cfg, prompt_ids=PROMPT).run()
        assert [[d["token_id"] for d in s["draft"]] for s in trace["steps"]] == [
            [d["token_id"] for d in s["draft"]] for s in chain["steps"]
        ]
