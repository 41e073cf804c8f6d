"""The llama.cpp peer (a benchmark-only extra): clear errors where it is not installed; a real run where it is."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from specviz.cli.commands import main
from specviz.models.llamacpp import load_llamacpp
from specviz.models.presets import ModelLoadError


@pytest.fixture
def no_llamacpp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as where it was never installed


def test_missing_says_how_to_install(no_llamacpp: None) -> None:
    with pytest.raises(ModelLoadError, match="make peer"):
        load_llamacpp()


def test_bench_peer_missing_is_one_line(no_llamacpp: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--peer", "llama.cpp", "--limit", "1", "--reps", "1"]) == 2
    err = capsys.readouterr().err
    assert "make peer" in err and "Traceback" not in err


def test_bench_peer_needs_the_embedded_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--peer", "llama.cpp", "--target", "HuggingFaceTB/SmolLM2-360M-Instruct"]) == 2
    assert "default target" in capsys.readouterr().err


def test_bench_peer_unknown_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--peer", "vllm"])
    assert "llama.cpp" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="the benchmark-only extra: `make peer`")
def test_greedy_and_a_rolled_back_pass() -> None:
    # only where `make peer` ran (never in CI): llama.cpp decodes the embedded GGUF from token ids
    peer = load_llamacpp(logits_all=True)
    ids = [1, 9690, 198, 2683, 314, 253, 5356, 30]
    out = peer.greedy(ids, 8)
    assert 1 <= len(out) <= 8 and all(0 <= t < peer.vocab_size for t in out)
    base = peer.prefill(ids)
    peer.pass_over(base, out[:3])
    assert peer.llm.n_tokens == base
    assert peer.greedy(ids, 8) == out  # the rolled-back pass left nothing behind
