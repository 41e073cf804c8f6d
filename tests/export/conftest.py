"""The embedded pair in float32 and its ONNX exports, shared by tests/export (loaded once a session).

The target's export comes from specviz.export.bundle's per-machine cache: ~90 s the first time, or
after a change to the export code (part of the cache key), seconds after."""

from __future__ import annotations

from pathlib import Path

import pytest

from specviz.cli.commands import main
from specviz.export.bundle import cached_model
from specviz.export.onnxgraph import export_onnx
from specviz.models.lm import CausalLM, load_model
from specviz.models.presets import DEFAULT

PROMPT = "Tell me about owls."


@pytest.fixture(scope="session")
def embedded_target() -> CausalLM:
    return load_model(DEFAULT, "cpu", "float32")


@pytest.fixture(scope="session")
def embedded_draft(embedded_target: CausalLM) -> CausalLM:
    return load_model(DEFAULT, "cpu", "float32", role="draft", tokenizer=embedded_target.tokenizer)


@pytest.fixture(scope="session")
def draft_onnx(tmp_path_factory: pytest.TempPathFactory, embedded_draft: CausalLM) -> Path:
    """A fresh export of the draft (small: ~10 s), not the cached one: the export itself under test."""
    return export_onnx(embedded_draft, tmp_path_factory.mktemp("onnx") / "draft.onnx")


@pytest.fixture(scope="session")
def target_onnx() -> Path:
    return cached_model("target", "fp32")[0]


@pytest.fixture(scope="session")
def live_dir(tmp_path_factory: pytest.TempPathFactory, target_onnx: Path) -> Path:
    """An export-live folder in the default quantization, made through the command line."""
    out = tmp_path_factory.mktemp("live") / "site"
    assert main(["export-live", "-o", str(out)]) == 0
    return out
