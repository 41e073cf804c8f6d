"""The standalone draft's model card."""

from __future__ import annotations

import json
from pathlib import Path

from specviz.train import draft_card


def test_model_card_says_how_the_draft_was_initialised(tmp_path: Path) -> None:
    cfg = {"num_hidden_layers": 2, "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 4}
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "intermediate_size": 1024}))
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1024)
    stats = {
        "params": 4_195_584,
        "vocab": 8192,
        "layers_from_target": [0, 1],
        "steps": 100,
        "best_step": 100,
        "hidden": 256,
        "target_hidden": 576,
        "weight_decay": 0.1,
        "batch": 16,
        "lr": 1e-3,
        "hard_weight": 0.5,
        "seed": 0,
        "rounds": 3,
        "greedy_answers": 1152,
        "train_answers": 4600,
        "train_tokens": 490_000,
        "heldout_agreement_start": 0.001,
        "heldout_agreement": 0.45,
        "heldout_vocab_coverage": 0.95,
        "train_minutes": 25.0,
    }
    draft_card.write_card(tmp_path, stats)
    card = (tmp_path / "README.md").read_text()
    assert "principal directions" in card and "copied" not in card
    assert "answered 3 time(s)" in card and "1152 of them greedy" in card and "45.0%" in card
    draft_card.write_card(tmp_path, {**stats, "target_hidden": 256})
    assert "layers copied from target layers [0, 1]" in (tmp_path / "README.md").read_text()
    # no curve recorded (drafts trained before it was): no table; a curve: its table and whether it still rises
    assert "against data" not in (tmp_path / "README.md").read_text()
    curve = [{"step": s, "answer_tokens_seen": s * 300, "agreement": 0.3 + s / 10_000} for s in range(0, 2001, 100)]
    draft_card.write_card(tmp_path, {**stats, "curve": curve})
    card = (tmp_path / "README.md").read_text()
    assert "| 2000 | 600,000 | 50.0% |" in card and "| 0 | 0 | 30.0% |" in card
    assert card.count("\n| ") <= 14 and "still rising" in card


def test_a_continued_draft_card_names_the_run_before() -> None:
    from specviz.train.draft_card import _continued_text

    assert _continued_text({}) == ""
    words = _continued_text(
        {"init_from": {"folder": "assets/draft", "steps": 4000, "train_minutes": 51.1, "lr": 0.001}}
    )
    assert "4000 steps, 51 minutes, lr 0.001" in words and "`--init-from assets/draft`" in words
