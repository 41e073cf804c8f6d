"""The model layer with the tiny test models: local directories, clear load errors, the vocabulary check.

The embedded default pair is tested elsewhere (it is large and slow to load).
"""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import jsonschema
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from specviz.drafters.pair import load_pair
from specviz.models.lm import CausalLM, check_vocab, load_model, pick_device, pick_dtype
from specviz.models.presets import ModelLoadError
from specviz.models.vocab import TokenMap
from tests.conftest import EOS, SPECIALS, WORDS, make_model


def other_tokenizer() -> PreTrainedTokenizerFast:
    """Same size as the test tokenizer, different ids: a draft from another model family."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS[::-1])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>")


def test_load_local_directory(model_dirs: tuple[Path, Path], tokenizer: PreTrainedTokenizerFast) -> None:
    lm = load_model(str(model_dirs[0]), "cpu", "float32")  # auto depends on the machine (bf16 where it is fast)
    assert lm.name == "target" and lm.device == torch.device("cpu") and lm.dtype == torch.float32
    assert lm.vocab_size == len(tokenizer) and lm.eos_token_ids == [EOS]
    ids = lm.encode("the cat sat", chat=False)
    assert ids == tokenizer("the cat sat")["input_ids"] and lm.token_text(ids[1]) == "cat"
    assert not any(p.requires_grad and p.grad is not None for p in lm.model.parameters())
    assert not lm.model.training


def test_loaded_model_matches_the_saved_one(model_dirs: tuple[Path, Path], target: CausalLM) -> None:
    lm = load_model(str(model_dirs[0]), "cpu", "float32")
    ids = [1, 3, 4, 5]
    assert torch.allclose(lm.forward(lm.new_cache(), ids), target.forward(target.new_cache(), ids), atol=1e-5)


def test_cache_rollback_gives_the_same_logits_as_a_fresh_pass(target: CausalLM) -> None:
    cache = target.new_cache()
    target.forward(cache, [1, 3, 4, 5, 6, 7])
    target.rollback(cache, 3)
    assert target.cache_length(cache) == 3
    again = target.forward(cache, [9, 10])
    fresh = target.forward(target.new_cache(), [1, 3, 4, 9, 10])[-2:]
    assert torch.allclose(again, fresh, atol=1e-5)


def test_chat_without_a_template_is_a_clear_error(model_dirs: tuple[Path, Path]) -> None:
    lm = load_model(str(model_dirs[0]), "cpu")
    with pytest.raises(ModelLoadError, match="no chat template; use a raw prompt"):
        lm.encode("hi", chat=True)
    assert lm.encode("the cat") == lm.encode("the cat", chat=False)  # default: raw when there is no template


def test_missing_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_model(str(tmp_path / "nope"), "cpu")
    with pytest.raises(ModelLoadError, match="no such model directory"):
        load_model("./relative/nope", "cpu")
    with pytest.raises(ModelLoadError, match="no such GGUF file"):
        load_model(str(tmp_path / "model.gguf"), "cpu")


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: set the module constant too
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError) as info:
        load_model("specviz-tests/no-such-model", "cpu", role="draft")
    msg = str(info.value)
    assert "could not load draft model 'specviz-tests/no-such-model'" in msg
    assert "hub is not reachable" in msg and "local directory" in msg


def test_directory_that_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="could not load target model"):
        load_model(str(tmp_path), "cpu")


def test_vocabulary_mismatch(target: CausalLM) -> None:
    other = CausalLM(target.model, other_tokenizer(), "other-family", torch.device("cpu"))
    with pytest.raises(ModelLoadError, match=r"different tokenizer from the target 'tiny-target'.*--draft ngram"):
        check_vocab(target, other)
    check_vocab(target, target)  # the same tokenizer object
    twin = CausalLM(
        target.model, PreTrainedTokenizerFast(tokenizer_object=target.tokenizer.backend_tokenizer), "t", target.device
    )
    check_vocab(target, twin)  # an equal vocabulary in another object


def test_load_pair_checks_the_vocabulary(model_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    tdir, ddir = model_dirs
    _, drf = load_pair(str(tdir), str(ddir), "cpu")
    assert drf is not None and drf.name == "draft"
    assert load_pair(str(tdir), "ngram", "cpu")[1] is None

    foreign = tmp_path / "foreign"
    make_model(5, len(WORDS) + len(SPECIALS)).save_pretrained(foreign)
    other_tokenizer().save_pretrained(foreign)
    with pytest.raises(ModelLoadError, match="different tokenizer"):
        load_pair(str(tdir), str(foreign), "cpu")


def test_load_pair_rejects_a_draft_with_too_few_outputs(model_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    small = tmp_path / "small"
    make_model(6, 20).save_pretrained(small)  # no tokenizer: it borrows the target's
    with pytest.raises(ModelLoadError, match="has 20 output tokens, fewer than the target's tokenizer"):
        load_pair(str(model_dirs[0]), str(small), "cpu")


def test_device_and_dtype_choice() -> None:
    cpu = pick_device("cpu")
    assert cpu == torch.device("cpu") and pick_dtype(cpu) in (torch.float32, torch.bfloat16)  # probed: test_numerics
    with pytest.raises(ModelLoadError, match="unknown dtype 'int3'; choose auto, float32"):
        pick_dtype(cpu, "int3")
    assert pick_dtype(cpu, "bf16") == torch.bfloat16 and pick_dtype(torch.device("cuda"), "auto") == torch.bfloat16
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            pick_device("cuda")


def test_the_embedded_drafts_refuse_another_vocabulary(model_dirs: tuple[Path, Path]) -> None:
    """Public report: any target got the SmolLM2 draft and ran silently at 0% acceptance."""
    for draft in ("default", "standalone"):
        with pytest.raises(ModelLoadError, match=r"made for a 49152-token vocabulary.*--draft ngram"):
            load_pair(str(model_dirs[0]), draft, "cpu")
    with pytest.raises(ModelLoadError, match=r"feature draft .* width 576"):
        load_pair(str(model_dirs[0]), "feature", "cpu")


def _token_map_draft(path: Path, target: CausalLM, keep: int) -> None:
    """A reduced-vocabulary draft over the target's first `keep` ids (like the embedded one)."""
    make_model(7, keep + 1).save_pretrained(path)
    (path / "token_map.json").write_text(TokenMap.dumps(list(range(keep)), target.tokenizer, "tiny"))


def test_padded_output_rows_are_never_drawn(target: CausalLM, tmp_path: Path) -> None:
    """Public report: a target with one padding row in its output layer ended in IndexError in the token map."""
    from specviz.core.decoder import DecodeConfig
    from specviz.core.rules import make_rule
    from specviz.core.warp import Sampling
    from specviz.drafters.factory import make_drafter
    from specviz.run.record import Recording

    n = len(target.tokenizer)
    tdir, ddir = tmp_path / "padded", tmp_path / "draft"
    make_model(0, n + 1).save_pretrained(tdir)  # one output row more than the tokenizer has tokens
    target.tokenizer.save_pretrained(tdir)
    _token_map_draft(ddir, target, n - 4)
    tgt, drf = load_pair(str(tdir), str(ddir), "cpu")
    assert isinstance(drf, CausalLM) and drf.token_map is not None and tgt.padding_from == n
    raw = tgt.model(input_ids=torch.tensor([[1, 5, 6]])).logits[0, -1].softmax(-1)
    assert raw[n] > 0.005  # unmasked, the padding id would be drawn now and then
    logits = tgt.forward(tgt.new_cache(), [1, 5, 6])
    assert torch.isinf(logits[:, n]).all() and torch.isfinite(logits[:, :n]).all()
    for seed in range(5):
        cfg = DecodeConfig(gamma=3, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=40, seed=seed)
        trace = Recording(tgt, make_drafter(tgt, drf), "", cfg, prompt_ids=[1, 5, 6]).run()
        assert max(trace["output"]["token_ids"]) < n


def test_a_token_map_for_another_vocabulary_is_refused(target: CausalLM, tmp_path: Path) -> None:
    ddir = tmp_path / "draft"
    _token_map_draft(ddir, target, 10)
    (ddir / "token_map.json").write_text(TokenMap.dumps(list(range(10)), other_tokenizer(), "other family"))
    with pytest.raises(ModelLoadError, match=r"made for a \d+-token vocabulary \(other family\)"):
        load_model(str(ddir), "cpu", role="draft", tokenizer=target.tokenizer)


def byte_level_lm() -> CausalLM:
    """A tiny model over a byte-level BPE vocabulary (every byte a token, as GPT-2 / SmolLM2 spell them)."""
    from tokenizers import decoders
    from tokenizers import models as tmodels
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    alphabet = sorted(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(["<unk>", "<bos>", "<eos>", *alphabet])}
    tok = Tokenizer(tmodels.BPE(vocab, [], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>")
    return CausalLM(make_model(3, len(fast)), fast, "bytes", torch.device("cpu"))


def test_token_bytes_of_byte_level_and_byte_fallback_vocabularies() -> None:
    from tokenizers import decoders

    lm = byte_level_lm()
    ids = lm.tokenizer("😀 a")["input_ids"]
    assert len(ids) == 6 and lm.tokenizer.decode(ids) == "😀 a"
    assert [lm.token_bytes(i) for i in ids] == [b"\xf0", b"\x9f", b"\x98", b"\x80", None, None]
    assert [lm.token_text(i) for i in ids] == ["‹F0›", "‹9F›", "‹98›", "‹80›", " ", "a"]
    vocab = {"<unk>": 0, "<0xF0>": 1, "<0x9F>": 2, "a": 3}
    sp = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    sp.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    fast = PreTrainedTokenizerFast(tokenizer_object=sp, unk_token="<unk>")
    fallback = CausalLM(make_model(3, 4), fast, "sp", torch.device("cpu"))
    assert (fallback.token_bytes(1), fallback.token_text(1), fallback.token_bytes(3)) == (b"\xf0", "‹F0›", None)


def test_a_split_character_survives_the_trace(tmp_path: Path) -> None:
    """Public report: every token of an emoji prompt read "�", and a rebuilt JSONL output ' �� ��'."""
    from specviz.core.decoder import DecodeConfig
    from specviz.core.rules import make_rule
    from specviz.core.warp import Sampling
    from specviz.drafters.ngram import NgramDrafter
    from specviz.run.record import Recording
    from specviz.trace import dump, load, validate

    lm = byte_level_lm()
    prompt = lm.tokenizer("Emoji list: 😀 😃 😄 😀 😃 😄 😀")["input_ids"]
    cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=16)
    trace = Recording(lm, NgramDrafter(lm.vocab_size), "", cfg, prompt_ids=prompt).run()
    assert validate(trace) == []
    schema = json.loads((Path(__file__).parents[2] / "docs" / "trace.schema.json").read_text())
    assert list(jsonschema.Draft202012Validator(schema).iter_errors(trace)) == []
    logged = [d for s in trace["steps"] for d in s["draft"]] + [
        e for s in trace["steps"] for d in s["draft"] for e in d["top"]
    ]
    assert any("bytes" in d for d in logged) and not any("\ufffd" in d["token"] for d in logged)
    for d in logged:
        if "bytes" in d:
            assert d["token"].startswith("‹") and lm.token_bytes(d["token_id"]) == bytes.fromhex(d["bytes"])
    path = tmp_path / "run.jsonl"
    dump(trace, path)
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))  # as if killed before the output
    rebuilt = load(path)
    assert rebuilt["output"]["token_ids"] == trace["output"]["token_ids"]
    assert rebuilt["output"]["text"] == lm.tokenizer.decode(trace["output"]["token_ids"]) == trace["output"]["text"]
