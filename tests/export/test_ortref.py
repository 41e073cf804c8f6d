"""specviz/export/ortref.py: the reference decoder reads a folder as the browser does."""

from __future__ import annotations

from pathlib import Path

import pytest

from specviz.export import ortref
from specviz.models.lm import CausalLM
from specviz.models.presets import REPO_ROOT

pytestmark = pytest.mark.slow


def test_encoding_equals_the_python_tokenizer(live_dir: Path, embedded_target: CausalLM):
    """tokenizer.json plus the chat template, rendered with jinja2, give CausalLM.encode's ids."""
    prompts = (REPO_ROOT / "assets" / "prompts" / "eval.txt").read_text().splitlines()[:6]
    for prompt in [*prompts, "Ünïcode — and emoji 🦉?", "  spaces\nand lines  "]:
        assert ortref.encode(live_dir, prompt) == embedded_target.encode(prompt)
        assert ortref.encode(live_dir, prompt, chat=False) == embedded_target.encode(prompt, chat=False)


def test_greedy_on_the_folder_equals_the_torch_model(live_dir: Path, embedded_target: CausalLM):
    """The default quantization stores the embedded target's GGUF weights exactly: the same tokens."""
    ids = embedded_target.encode("Tell me about owls.")
    cache, want = embedded_target.new_cache(), []
    logits = embedded_target.forward(cache, ids)
    for _ in range(16):
        want.append(int(logits[-1].argmax()))
        logits = embedded_target.forward(cache, [want[-1]])
    emitted = ortref.greedy_margins(live_dir, "Tell me about owls.", 16)
    assert [e.token_id for e in emitted] == want
    assert all(e.margin >= 0 for e in emitted)
    assert ortref.greedy(live_dir, ids, 16) == want  # ids in, the same


def test_greedy_stops_after_an_end_of_turn(live_dir: Path):
    out = ortref.greedy(live_dir, "Say only the word yes.", 64)
    assert out[-1] in ortref.manifest(live_dir)["eos_token_ids"] and len(out) < 64
