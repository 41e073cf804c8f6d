"""Tiny models and a tiny tokenizer built inside the tests: no network, no downloads."""

from __future__ import annotations

import os

# No test may reach a model hub; set before transformers/huggingface_hub read it at import.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from specviz.core.decoder import DecodeConfig
from specviz.core.rules import make_rule
from specviz.core.warp import Sampling
from specviz.drafters.model import ModelDrafter
from specviz.drafters.ngram import NgramDrafter
from specviz.models.lm import CausalLM, load_model
from specviz.run.record import Recording
from specviz.trace import Trace, validate

# Tiny models gain nothing from a second thread, and on a loaded 2-core box the threads'
# spin-waiting makes each forward pass ~100x slower.
torch.set_num_threads(1)

WORDS = [
    "the",
    "cat",
    "sat",
    "on",
    "mat",
    "rug",
    "dog",
    "ran",
    "to",
    "a",
    "red",
    "blue",
    "big",
    "small",
    "and",
    "then",
    "slept",
    "ate",
    "fish",
    "in",
    "house",
    "tree",
    "sun",
    "moon",
    "star",
    "sky",
    "day",
    "night",
    "is",
    "was",
    "it",
    "he",
    "she",
    "they",
    "we",
    "you",
    "I",
    "run",
    "walk",
    "jump",
    "play",
]
SPECIALS = ["<unk>", "<bos>", "<eos>"]
EOS = 2
PROMPT = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]  # tiny_trace's prompt: token ids of the tiny tokenizer


def make_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>")
    return fast


def make_model(seed: int, vocab: int, layers: int = 2, hidden: int = 32, scale: float = 1.0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=1,
        eos_token_id=EOS,
        pad_token_id=0,
        initializer_range=0.2 * scale,  # large init: peaked, varied distributions instead of near-uniform ones
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(cfg).eval()


def perturbed(model: LlamaForCausalLM, seed: int, noise: float) -> LlamaForCausalLM:
    """A draft that mostly agrees with the target: the target's weights plus noise."""
    draft = LlamaForCausalLM(model.config).eval()
    draft.load_state_dict(model.state_dict())
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for prm in draft.parameters():
            prm.add_(torch.randn(prm.shape, generator=gen) * noise * prm.std().clamp_min(1e-3))
    return draft


@pytest.fixture(scope="session")
def tokenizer() -> PreTrainedTokenizerFast:
    return make_tokenizer()


@pytest.fixture(scope="session")
def target(tokenizer: PreTrainedTokenizerFast) -> CausalLM:
    return CausalLM(make_model(0, len(tokenizer)), tokenizer, "tiny-target", torch.device("cpu"))


@pytest.fixture(scope="session")
def draft_lm(target: CausalLM, tokenizer: PreTrainedTokenizerFast) -> CausalLM:
    return CausalLM(perturbed(target.model, 1, 0.5), tokenizer, "tiny-draft", torch.device("cpu"))


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory, target: CausalLM, draft_lm: CausalLM) -> tuple[Path, Path]:
    """The tiny pair saved as safetensors directories, as a user's local models would be."""
    root = tmp_path_factory.mktemp("models")
    tdir, ddir = root / "target", root / "draft"
    for lm, d in ((target, tdir), (draft_lm, ddir)):
        lm.model.save_pretrained(d)
        lm.tokenizer.save_pretrained(d)
    return tdir, ddir


@pytest.fixture(scope="session")
def loaded_pair(model_dirs: tuple[Path, Path]) -> tuple[CausalLM, CausalLM]:
    return load_model(str(model_dirs[0]), "cpu"), load_model(str(model_dirs[1]), "cpu", role="draft")


@pytest.fixture(scope="module")
def tiny_trace(target: CausalLM, draft_lm: CausalLM) -> Trace:
    """A sampled trace of the tiny pair (30 tokens, γ = 4) for the page tests to upload."""
    cfg = DecodeConfig(gamma=4, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=30, seed=9)
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "the cat", cfg, prompt_ids=PROMPT).run()
    assert validate(trace) == [] and len(trace["steps"]) >= 5
    return trace


@pytest.fixture(scope="session")
def recorded(target: CausalLM, draft_lm: CausalLM) -> dict[str, Trace]:
    """One real trace per rule from the tiny pair, plus prompt lookup (the figures' tests; read-only)."""
    out = {}
    for rule, params in (("sampling", {}), ("greedy", {}), ("threshold", {"tau": 0.3}), ("typical", {})):
        cfg = DecodeConfig(gamma=4, rule=make_rule(rule, **params), sampling=Sampling(1.0), max_new_tokens=40, seed=5)
        out[rule] = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0.0), max_new_tokens=30)
    out["ngram"] = Recording(target, NgramDrafter(target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    for trace in out.values():
        assert validate(trace) == []
    return out
