"""The draft's training data: shards round-trip as safetensors, rounds never leak held-out prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from specviz.train import draft as td


def _shard(prompt_ids: list[list[int]], response: list[list[int]], ends: list[int]) -> dict:
    resp = torch.tensor(response)
    valid = torch.arange(resp.shape[1]).expand_as(resp) < torch.tensor(ends).view(-1, 1)
    probs = torch.full((*resp.shape, td.TOPK), 1.0 / td.TOPK).half()
    index = resp.unsqueeze(-1).repeat(1, 1, td.TOPK).int()
    return {"prompt": prompt_ids, "response": resp, "valid": valid, "probs": probs, "index": index}


def test_shards_round_trip_with_their_batch_and_round(tmp_path: Path) -> None:
    s = _shard([[1, 2, 3], [4]], [[5, 6, 7], [8, 9, 0]], [3, 2])
    td.save_shard(tmp_path / "shard-007.safetensors", s)
    td.save_shard(tmp_path / "shard-007-r2.safetensors", s)
    assert not list(tmp_path.glob("*.pt"))  # never pickles
    loaded = td.load_shards(tmp_path)
    assert sorted((x["batch"], x["round"]) for x in loaded) == [(7, 0), (7, 2)]
    for x in loaded:
        assert x["prompt"] == [[1, 2, 3], [4]]
        assert torch.equal(x["response"], s["response"])
        assert torch.equal(x["valid"], s["valid"])


def test_split_holds_out_the_last_batches_in_every_round() -> None:
    shards = [{"batch": b, "round": r} for b in range(5) for r in (0, 1, 2)]
    train, held = td.split(shards, holdout=2)
    assert {s["batch"] for s in train} == {0, 1, 2}
    assert len(train) == 9  # every round of the training batches
    assert [(s["batch"], s["round"]) for s in held] == [(3, 0), (4, 0)]  # round 0 only


def test_token_map_and_examples_map_rare_tokens_to_unk() -> None:
    s = _shard([[1, 1, 2]], [[3, 3, 3, 9]], [3])  # 9 is past the answer's end: not counted
    token_map = td.build_token_map([s], size=3)
    assert token_map == [3, 1]  # the two most frequent; the last draft id is "any other token"
    unk = len(token_map)
    lookup = torch.full((16,), unk, dtype=torch.long)
    lookup[torch.tensor(token_map)] = torch.arange(len(token_map))
    [(ids, plen, hard, soft_idx, soft_p)] = td.examples([s], lookup, unk)
    assert plen == 3
    assert ids.tolist() == [1, 1, unk, 0, 0, 0]
    assert hard.tolist() == [0, 0, 0] and soft_idx[:, 0].tolist() == [0, 0, 0]
    assert torch.allclose(soft_p.sum(-1), torch.ones(3))


def test_greedy_answers_come_from_the_distill_sources_when_recorded(tmp_path: Path) -> None:
    sources = {"train": {"magpie greedy bfloat16": 30, "magpie t0.7 bfloat16": 31, "template greedy float32": 5}}
    (tmp_path / "datagen-manifest.json").write_text(json.dumps({"sources": sources}))
    assert td._greedy_answers(tmp_path, []) == 35
    shards = [{"prompt": [1, 2], "batch": b, "round": 0} for b in range(8)]  # gen's own data: every fourth batch
    assert td._greedy_answers(tmp_path / "none", shards) == 4


def test_a_narrower_draft_starts_from_a_bfloat16_target_too() -> None:
    """A CPU with bf16 units loads the target in bf16 by default; torch has no bf16 SVD on CPU (a retrain on
    a Zen 4 failed there), so the principal directions are taken in float32."""
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=200, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2,
    )  # fmt: skip
    target = LlamaForCausalLM(cfg).to(torch.bfloat16)
    draft = td.init_draft(target, list(range(0, 200, 2)), [0, 1], hidden=32)
    emb = draft.model.embed_tokens.weight
    assert emb.shape == (101, 32) and emb.dtype == torch.float32 and torch.isfinite(emb).all()


def test_a_draft_trains_further_from_its_folder(tmp_path: Path) -> None:
    """--init-from: the second run starts from the first's weights and vocabulary, and its card says so."""
    data = tmp_path / "shards"
    data.mkdir()
    g = torch.Generator().manual_seed(0)
    for batch in range(3):
        response = torch.randint(100, 140, (4, 12), generator=g).tolist()
        prompts = [torch.randint(100, 140, (5,), generator=g).tolist() for _ in range(4)]
        td.save_shard(data / f"shard-{batch:03d}.safetensors", _shard(prompts, response, [12, 10, 8, 6]))
    first = td.train(data, tmp_path / "a", steps=2, vocab=64, batch=4, holdout=1, hidden=32, eval_every=1)
    again = td.train(data, tmp_path / "b", steps=2, batch=4, holdout=1, eval_every=1, init_from=tmp_path / "a")
    assert again["heldout_agreement_start"] == first["heldout_agreement"]  # the first run's kept weights
    assert again["hidden"] == 32 and again["vocab"] == first["vocab"]
    assert (
        json.loads((tmp_path / "b" / "token_map.json").read_text())["target_ids"]
        == json.loads((tmp_path / "a" / "token_map.json").read_text())["target_ids"]
    )
    assert (
        again["init_from"]["steps"] == 2
        and f"--init-from {tmp_path / 'a'}" in (tmp_path / "b" / "README.md").read_text()
    )
    with pytest.raises(SystemExit, match="not a draft folder"):
        td.load_draft(tmp_path)
