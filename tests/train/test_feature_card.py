"""The feature head's model card: written from training.json, bench figures added later."""

import json

from specviz.drafters.feature import save_head
from specviz.train.feature import init_head
from specviz.train.feature_card import add_decoding, write_card

STATS = {
    "params": 1000,
    "vocab": 10,
    "depth": 2,
    "warm_steps": 5,
    "steps": 10,
    "best_step": 10,
    "batch": 2,
    "lr": 1e-3,
    "ce_weight": 0.3,
    "seed": 0,
    "rounds": 1,
    "train_answers": 4,
    "train_answer_tokens": 40,
    "heldout_answers": 2,
    "heldout_agreement_start": [0.01, 0.0],
    "heldout_agreement_by_position": [0.6, 0.4],
    "heldout_expected_tokens_per_step": 1.84,
    "feature_minutes": 0.1,
    "train_minutes": 0.2,
}


def test_the_model_card_reports_agreement_by_position(target, tmp_path):
    stats = dict(STATS)
    save_head(init_head(target), tmp_path, None, stats)
    write_card(tmp_path, stats)
    card = (tmp_path / "README.md").read_text()
    assert "by draft position: 1: 60.0%, 2: 40.0%" in card and "1.84" in card
    bench = {
        "date": "2026-11-29",
        "machine": {"cpu": "AMD EPYC"},
        "prompts": 10,
        "gamma": 4,
        "max_new_tokens": 128,
        "tokens_per_step": 2.61,
        "sampling_t0.7": {"tokens_per_step": 2.3},
        "speedup_vs_target": 1.42,
        "hf_assisted_ratio": 1.7,
    }
    (tmp_path / "bench.json").write_text(json.dumps(bench))
    add_decoding(tmp_path, tmp_path / "bench.json")
    card = (tmp_path / "README.md").read_text()
    assert "**2.61 tokens per step**" in card and "**1.42x** the target alone" in card
    assert json.loads((tmp_path / "training.json").read_text())["decoding"]["cpu"] == "AMD EPYC"
    assert "last hidden state" in card and "--feature-layers eagle3" in card


def test_a_multi_layer_heads_card_names_its_layers(target, tmp_path):
    stats = {**STATS, "layers": [2, 15, 27]}
    save_head(init_head(target, (2, 15, 27)), tmp_path, None, stats)
    write_card(tmp_path, stats)
    card = (tmp_path / "README.md").read_text()
    assert "entering layers 2, 15, 27" in card and "EAGLE-3's fusion" in card and "3 x 576 -> 576" in card
