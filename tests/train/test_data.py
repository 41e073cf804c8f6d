"""specviz.train.data: prompt cleaning, the held-out split, shards written whole, resuming, status."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import pytest

from specviz.models.lm import CausalLM
from specviz.train import data as datagen

CHAT = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


def test_clean_prompt_keeps_requests_and_drops_the_rest() -> None:
    assert (
        datagen.clean_prompt("  Can you help me  plan a   trip to Morocco? ")
        == "Can you help me plan a trip to Morocco?"
    )
    for bad in (
        "Hi!",
        "ok ok ok",
        "Tell me <|im_start|> about cats please",
        "a\x07b is a bell in a prompt",
        "1234 5678 9012 3456 7890",
        "x" * 500,
    ):
        assert datagen.clean_prompt(bad) is None, bad


def test_the_held_out_split_is_stable_and_small() -> None:
    prompts = [f"Question number {i} about topic {i % 37}?" for i in range(2000)]
    share = sum(map(datagen.held_out, prompts)) / len(prompts)
    assert 0.02 < share < 0.09
    assert datagen.held_out("Can you help me?") == datagen.held_out("can you HELP me")  # by key, not by spelling
    assert (
        datagen.prompt_key("Can you, please, help me plan a trip to Rome today?")
        == "can you please help me plan a trip"
    )


def test_shards_are_written_whole_and_read_back(tmp_path: Path) -> None:
    rows = [{"prompt": "héllo wörld, a request", "n": i} for i in range(3)]
    datagen.write_shard(tmp_path / "prompts-x-0000.jsonl.gz", rows)
    assert list(datagen.read_shards("prompts-*.jsonl.gz", tmp_path)) == rows
    assert not list(tmp_path.glob("*.tmp"))
    with gzip.open(tmp_path / "prompts-x-0000.jsonl.gz", "rt") as f:
        assert len(f.read().splitlines()) == 3


def test_user_prefix_is_the_template_up_to_the_message(tokenizer) -> None:
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = CHAT
    assert datagen.user_prefix(tok) == "<|im_start|>user\n"


@pytest.fixture()
def tiny(target: CausalLM, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    tok = copy.deepcopy(target.tokenizer)
    tok.chat_template = CHAT
    lm = CausalLM(target.model, tok, "tiny", target.device)
    monkeypatch.setattr(datagen, "_load", lambda dtype: lm)
    templates = tmp_path / "train.txt"
    templates.write_text("the cat sat on the mat\nthe dog ran to the cat\nthe cat ran\n")
    monkeypatch.setattr(datagen, "TEMPLATES", templates)
    return tmp_path / "data"


def test_answers_resume_where_they_stopped(tiny: Path) -> None:
    datagen.write_prompts(1, batch=4, data=tiny)  # a random tiny model rarely writes a clean request: may keep none
    assert len(list(tiny.glob("prompts-magpie-*.jsonl.gz"))) == 1
    datagen.write_answers(1.0, batch=2, max_new_tokens=6, data=tiny)
    first = datagen.status(tiny)
    n_prompts = sum(first["prompts"].values())
    assert first["answers"] == 2 * n_prompts  # every prompt, greedy and sampled
    rows = list(datagen.read_shards("answers-*.jsonl.gz", tiny))
    assert {r["mode"] for r in rows} == {"greedy", "t0.7"} and all(r["dtype"] == "float32" for r in rows)
    assert all(1 <= len(r["answer_ids"]) <= 6 and r["split"] in ("train", "held-out") for r in rows)
    shards = sorted(p.name for p in tiny.glob("answers-*"))
    datagen.write_answers(1.0, batch=2, max_new_tokens=6, data=tiny)  # nothing left to answer
    assert sorted(p.name for p in tiny.glob("answers-*")) == shards


def test_training_shards_carry_the_teacher_forced_soft_labels(tiny: Path, tmp_path: Path) -> None:
    """The answers become train_draft's shards; the soft labels at each answer position are what a
    teacher-forced pass of the evaluation model gives there, and held-out answers come last."""
    import torch

    from specviz.train.common import TOPK, load_shards, split

    datagen.write_answers(1.0, batch=2, max_new_tokens=5, data=tiny)
    out = tmp_path / "shards"
    held = datagen.training_shards(out, batch=2, data=tiny)
    shards = load_shards(out)
    rows = list(datagen.read_shards("answers-*.jsonl.gz", tiny))
    assert sum(len(s["prompt"]) for s in shards) == len(rows)
    assert held == (sum(r["split"] == "held-out" for r in rows) + 1) // 2
    s = shards[0]
    assert s["probs"].shape[-1] == TOPK and s["valid"].dtype == torch.bool
    b = 0
    n = int(s["valid"][b].sum())
    prompt, answer = s["prompt"][b], s["response"][b, :n].tolist()
    lm = datagen._load("auto")
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([prompt + answer])).logits[0].float()
    want = logits[len(prompt) - 1 : len(prompt) - 1 + n].softmax(-1).topk(TOPK, -1)
    assert torch.equal(s["index"][b, :n].long(), want.indices)
    assert torch.allclose(s["probs"][b, :n].float(), want.values, atol=1e-3)
    train, test = split(shards, held) if held else (shards, [])
    assert len(train) + len(test) == len(shards)


def test_training_shards_refuse_a_folder_made_from_other_data(tiny: Path, tmp_path: Path) -> None:
    """Review: shards are numbered by row; reusing a folder made from fewer answers (or train_draft gen's)
    would read old held-out rows as training batches. And --holdout 0 must hold nothing out."""
    from specviz.train.common import load_shards, split

    datagen.write_answers(1.0, batch=2, max_new_tokens=4, data=tiny)
    out = tmp_path / "shards"
    datagen.training_shards(out, batch=2, data=tiny)
    datagen.training_shards(out, batch=2, data=tiny)  # the same rows: fine, nothing rewritten
    (tiny / "prompts-magpie-extra.jsonl.gz").unlink(missing_ok=True)
    datagen.write_shard(
        tiny / "prompts-magpie-extra.jsonl.gz", [{"prompt": "the cat sat on the dog today", "source": "magpie"}]
    )
    datagen.write_answers(1.0, batch=2, max_new_tokens=4, data=tiny)
    with pytest.raises(SystemExit, match="other data"):
        datagen.training_shards(out, batch=2, data=tiny)
    shards = load_shards(out)
    assert split(shards, 0) == (shards, [])


def test_answer_rows_split_by_prompt_and_say_where_they_came_from(tiny: Path) -> None:
    """The feature trainer reads the answers directly: chat prompt + answer ids, held-out prompts never in
    train (in either mode), the held-out cap a stable choice, and the sources counted per split."""
    datagen.write_answers(1.0, batch=2, max_new_tokens=4, data=tiny)
    lm = datagen._load("auto")
    rows = list(datagen.read_shards("answers-*.jsonl.gz", tiny))
    train, held, sources = datagen.answer_rows(tiny, lm.tokenizer)
    assert len(train) + len(held) == len(rows)
    assert sum(sources["train"].values()) == len(train) and sum(sources["held-out"].values()) == len(held)
    for ids, plen in train + held:
        assert 0 < plen < len(ids)
    from specviz.train.common import chat_ids

    want = chat_ids(lm.tokenizer, rows[0]["prompt"])
    assert (want + rows[0]["answer_ids"], len(want)) in train + held
    _, capped, _ = datagen.answer_rows(tiny, lm.tokenizer, max_heldout=0)
    assert capped == []
    assert datagen.answer_rows(tiny, lm.tokenizer, max_heldout=1)[1] == held[:1]
