"""Distillation data that grows across sessions: varied prompts and the evaluation model's answers.

    python -m specviz.train prompts --batches 40     # the evaluation model writes user turns (Magpie)
    python -m specviz.train answers --minutes 60     # answers prompts not answered yet, shard by shard
    python -m specviz.train status                   # what is there: prompts by source, answer tokens
    python -m specviz.train shards --out DIR         # the trainers' shards, soft labels by teacher forcing

Prompts come from two sources, each recorded with every example:
- "template": assets/prompts/train.txt (≈150 topics × a few question forms);
- "magpie": user turns the instruct model writes itself when given only its chat template's user
  prefix (Magpie, Xu et al. 2024, arXiv:2406.08464): sampled, kept only when the model ended the turn
  itself, cleaned, and de-duplicated on their first words.
A prompt is held out (never trained on) when a hash of its key falls in the first 5 of 100 buckets,
so held-out prompts are spread over both sources; the templates' held-out topics stay in
assets/prompts/eval.txt.

Only token ids are stored (gzip JSON lines, under data/distill/, committed): the autoregressive
answers are the costly part (hours of CPU); the evaluation model's soft labels and hidden states are
recomputed at training time by one teacher-forced pass per batch. Every shard is written whole and
then renamed, so a killed run never leaves a broken shard, and a run resumes where the last stopped.
Answers are generated in batches (a pass over 32 rows costs little more than one here), in the
dtype `--dtype auto` picks on this machine (the numerics the app decodes in), half greedy and half
sampled at T = 0.7, and each records its mode and dtype.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import itertools
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from specviz.models.presets import REPO_ROOT

DATA = REPO_ROOT / "data" / "distill"
TEMPLATES = REPO_ROOT / "assets" / "prompts" / "train.txt"
HELD_OUT_BUCKETS = 5  # of 100: the held-out share
MAX_PROMPT_CHARS = 400
_SENTINEL = "\x00SPECVIZ-USER-TURN\x00"

__all__ = [
    "DATA",
    "answer_rows",
    "clean_prompt",
    "held_out",
    "prompt_key",
    "read_shards",
    "status",
    "training_shards",
    "user_prefix",
    "write_shard",
]


# ---------------------------------------------------------------- prompts


def user_prefix(tokenizer: Any) -> str:
    """The chat template's text up to where a user's message starts (its system turn included)."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": _SENTINEL}], tokenize=False)
    return text[: text.index(_SENTINEL)]


def clean_prompt(text: str) -> str | None:
    """A written user turn as a prompt, or None when it is not one: too short or long, template
    markup, control characters, or no letters."""
    s = re.sub(r"[ \t]+", " ", text).strip()
    if not 15 <= len(s) <= MAX_PROMPT_CHARS or len(s.split()) < 4:
        return None
    if "<|" in s or "|>" in s or any(not (ch.isprintable() or ch == "\n") for ch in s):
        return None
    if sum(ch.isalpha() for ch in s) < 0.6 * len(s.replace(" ", "")):
        return None
    return s


def prompt_key(text: str) -> str:
    """What two prompts share when they are the same request: their first eight words, lower case."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower())[:8])


def held_out(text: str) -> bool:
    """Whether a prompt belongs to the held-out split (stable across machines and sessions)."""
    digest = hashlib.sha256(prompt_key(text).encode()).digest()
    return digest[0] * 100 // 256 < HELD_OUT_BUCKETS


# ---------------------------------------------------------------- shards


def write_shard(path: Path, rows: list[dict[str, Any]]) -> None:
    """gzip JSON lines, written whole and then renamed (a killed run leaves no broken shard)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8", compresslevel=9) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def read_shards(pattern: str, data: Path = DATA) -> Iterator[dict[str, Any]]:
    """Every row of the shards matching `pattern` (e.g. "answers-*.jsonl.gz"), in file-name order."""
    for path in sorted(data.glob(pattern)):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                yield json.loads(line)


def prompt_pool(data: Path = DATA) -> list[dict[str, Any]]:
    """Every prompt once (first source wins), with its source and split."""
    seen: set[str] = set()
    out = []
    templates = [{"prompt": p, "source": "template"} for p in TEMPLATES.read_text().splitlines() if p.strip()]
    for row in [*templates, *read_shards("prompts-*.jsonl.gz", data)]:
        key = prompt_key(row["prompt"])
        if key and key not in seen:
            seen.add(key)
            out.append({**row, "split": "held-out" if held_out(row["prompt"]) else "train"})
    return out


# ---------------------------------------------------------------- generation


def _load(dtype: str) -> Any:
    from specviz.models.lm import load_model

    return load_model("default", "cpu", dtype)


def _left_padded(rows: list[list[int]], pad: int) -> tuple[Any, Any]:
    import torch

    width = max(map(len, rows))
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def _until_eos(row: list[int], eos: set[int]) -> tuple[list[int], bool]:
    for j, t in enumerate(row):
        if t in eos:
            return row[: j + 1], True
    return row, False


def write_prompts(batches: int, batch: int = 32, seed: int = 0, dtype: str = "auto", data: Path = DATA) -> None:
    """Magpie: the evaluation model, given only its template's user prefix, writes `batches` × `batch` user turns."""
    import torch

    target = _load(dtype)
    tok, eos = target.tokenizer, set(target.eos_token_ids)
    prefix = tok(user_prefix(tok), add_special_tokens=False)["input_ids"]
    pad = tok.pad_token_id if tok.pad_token_id is not None else target.eos_token_ids[0]
    for b in range(batches):
        path = data / f"prompts-magpie-s{seed}-{b:04d}.jsonl.gz"
        if path.exists():
            continue
        t0 = time.time()
        torch.manual_seed(seed * 100_003 + b)
        ids, mask = _left_padded([prefix] * batch, pad)
        with torch.no_grad():
            out = target.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=True, temperature=1.0, top_p=0.95, top_k=None,
                max_new_tokens=64, pad_token_id=pad,
            )  # fmt: skip
        rows = []
        for r in out[:, ids.shape[1] :].tolist():
            turn, ended = _until_eos(r, eos)
            text = clean_prompt(tok.decode(turn, skip_special_tokens=True)) if ended else None
            if text:
                rows.append({"prompt": text, "source": "magpie", "seed": seed, "batch": b})
        write_shard(path, rows)
        print(f"{path.name}: {len(rows)}/{batch} kept in {time.time() - t0:.0f} s", flush=True)


def _answered(data: Path) -> set[tuple[str, str]]:
    return {(prompt_key(r["prompt"]), r["mode"]) for r in read_shards("answers-*.jsonl.gz", data)}


def write_answers(
    minutes: float, batch: int = 32, max_new_tokens: int = 128, dtype: str = "auto", data: Path = DATA, tag: str = ""
) -> None:
    """Answer every (prompt, mode) not answered yet, `batch` at a time, for at most `minutes`.

    Modes: "greedy" and "t0.7" (every prompt gets both). Shards are named by the first prompt's key
    hash and the mode, so two sessions never write the same name for different content."""
    import torch

    from specviz.train.common import chat_ids

    target = _load(dtype)
    tok, eos = target.tokenizer, set(target.eos_token_ids)
    dt = str(target.dtype).removeprefix("torch.")
    pad = tok.pad_token_id if tok.pad_token_id is not None else target.eos_token_ids[0]
    done = _answered(data)
    pool = prompt_pool(data)
    by_mode = []
    for mode in ("greedy", "t0.7"):
        todo = sorted((p for p in pool if (prompt_key(p["prompt"]), mode) not in done), key=lambda p: len(p["prompt"]))
        by_mode.append([(mode, todo[i : i + batch]) for i in range(0, len(todo), batch)])  # similar lengths together
    # greedy and sampled batches in turns: a run cut short still has both
    groups = [g for pair in itertools.zip_longest(*by_mode) for g in pair if g is not None]
    tag = tag or time.strftime("%Y%m%d%H%M-")  # this run's shard names differ from every other run's
    deadline = time.time() + 60 * minutes
    for mode, group in groups:
        if time.time() > deadline:
            break
        t0 = time.time()
        rows = [chat_ids(tok, p["prompt"]) for p in group]
        ids, mask = _left_padded(rows, pad)
        torch.manual_seed(int(hashlib.sha256(group[0]["prompt"].encode()).hexdigest()[:8], 16))
        sampled = mode != "greedy"
        with torch.no_grad():
            out = target.model.generate(
                input_ids=ids, attention_mask=mask, do_sample=sampled, temperature=0.7 if sampled else None,
                top_p=None, top_k=None, max_new_tokens=max_new_tokens, pad_token_id=pad,
            )  # fmt: skip
        shard = []
        for p, r in zip(group, out[:, ids.shape[1] :].tolist(), strict=True):
            answer, ended = _until_eos(r, eos)
            shard.append({**p, "mode": mode, "dtype": dt, "answer_ids": answer, "ended": ended})
        name = hashlib.sha256(group[0]["prompt"].encode()).hexdigest()[:10]
        write_shard(data / f"answers-{tag}{name}-{mode}.jsonl.gz", shard)
        n = sum(len(r["answer_ids"]) for r in shard)
        print(f"{len(shard)} answers ({mode}), {n} tokens in {time.time() - t0:.0f} s", flush=True)


def training_shards(out: Path, batch: int = 32, dtype: str = "auto", data: Path = DATA) -> int:
    """The answers as specviz.train.draft's shards (prompt, response, valid, top-32 probs and index): the
    evaluation model's soft labels come from one teacher-forced pass per batch. Train rows come first,
    held-out rows last; returns how many shards are held out (`python -m specviz.train train|feature --holdout N`)."""
    import torch

    from specviz.train.common import TOPK, chat_ids, save_shard

    target = _load(dtype)
    tok = target.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else target.eos_token_ids[0]
    rows = list(read_shards("answers-*.jsonl.gz", data))
    prompt_ids = {r["prompt"]: chat_ids(tok, r["prompt"]) for r in rows}  # once per prompt: both modes share it
    held = [r for r in rows if r["split"] == "held-out"]
    train = [r for r in rows if r["split"] != "held-out"]
    # train rows of similar lengths together: a batch pads to its longest (the trainer mixes batches itself);
    # held-out rows keep their order, so a --holdout of fewer shards than written holds out a fair sample
    train.sort(key=lambda r: len(prompt_ids[r["prompt"]]) + len(r["answer_ids"]))
    groups = [train[i : i + batch] for i in range(0, len(train), batch)]
    groups += [held[i : i + batch] for i in range(0, len(held), batch)]
    # shard n holds rows n·batch… of this exact list: a folder made from other rows (fewer answers, or
    # `python -m specviz.train gen`'s shards) would mix held-out answers into training, so it is refused, not reused
    digest = hashlib.sha256(
        json.dumps([[r["prompt"], r["mode"], len(r["answer_ids"])] for r in train + held] + [batch]).encode()
    ).hexdigest()
    manifest = out / "datagen-manifest.json"
    same = manifest.exists() and json.loads(manifest.read_text()).get("rows") == digest
    if out.exists() and any(out.glob("shard-*")) and not same:
        raise SystemExit(
            f"{out} holds shards made from other data (or by an older specviz, which ordered rows otherwise): "
            "remove it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    sources = {
        name: dict(Counter(f"{r['source']} {r['mode']} {r['dtype']}" for r in part))
        for name, part in (("train", train), ("held-out", held))
    }
    manifest.write_text(
        json.dumps({"rows": digest, "held_out_shards": (len(held) + batch - 1) // batch, "sources": sources}) + "\n"
    )
    for n, group in enumerate(groups):
        path = out / f"shard-{n:03d}.safetensors"
        if path.exists():
            continue
        prompts = [prompt_ids[r["prompt"]] for r in group]
        width = max(len(r["answer_ids"]) for r in group)
        seqs = [p + r["answer_ids"] for p, r in zip(prompts, group, strict=True)]
        full = max(map(len, seqs))
        ids = torch.tensor([s_ + [pad] * (full - len(s_)) for s_ in seqs])  # right padding: positions stay real
        mask = torch.tensor([[1] * len(s_) + [0] * (full - len(s_)) for s_ in seqs])
        # the logits before answer token j sit at position len(prompt) - 1 + j: the output layer runs on those
        # rows only (the prompts' and the padding's logits were most of a [B, L, V] float tensor, ~1.5 GB)
        at = torch.tensor([[len(p) - 1 + j for j in range(width)] for p in prompts]).clamp_max(full - 1)
        with torch.no_grad():
            hidden = target.model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, L, d]
            picked = hidden.gather(1, at[..., None].expand(-1, -1, hidden.shape[-1]))  # [B, width, d]
            logits = target.model.get_output_embeddings()(picked).float()  # [B, width, V]
        probs, index = torch.topk(logits.softmax(-1), TOPK, dim=-1)
        resp = torch.tensor([r["answer_ids"] + [pad] * (width - len(r["answer_ids"])) for r in group])
        valid = torch.tensor([[j < len(r["answer_ids"]) for j in range(width)] for r in group])
        tmp = path.with_suffix(".tmp")
        save_shard(
            tmp, {"prompt": prompts, "response": resp, "valid": valid, "probs": probs.half(), "index": index.int()}
        )
        os.replace(tmp, path)
    return (len(held) + batch - 1) // batch


def answer_rows(
    data: Path, tokenizer: Any, max_heldout: int | None = None
) -> tuple[list[tuple[list[int], int]], list[tuple[list[int], int]], dict[str, Any]]:
    """The answers as the trainers' rows: (chat prompt ids + answer ids, prompt length), train and
    held-out by each row's `split` (a held-out prompt is never trained on, in either mode), and
    where they came from ({split: {source mode dtype: answers}}). At most `max_heldout` held-out
    rows, a stable choice (by a hash of prompt and mode), so the figure is comparable across sizes."""
    from specviz.train.common import chat_ids

    rows = list(read_shards("answers-*.jsonl.gz", data))
    if not rows:
        raise SystemExit(f"no answers in {data}: run `python -m specviz.train answers` first")
    held = [r for r in rows if r["split"] == "held-out"]
    held.sort(key=lambda r: hashlib.sha256(f"{r['prompt']}\x00{r['mode']}".encode()).hexdigest())
    held = held[:max_heldout] if max_heldout is not None else held
    train = [r for r in rows if r["split"] != "held-out"]
    sources: dict[str, Any] = {}
    for name, part in (("train", train), ("held-out", held)):
        sources[name] = dict(Counter(f"{r['source']} {r['mode']} {r['dtype']}" for r in part))

    def as_row(r: dict[str, Any]) -> tuple[list[int], int]:
        prompt = chat_ids(tokenizer, r["prompt"])
        return prompt + r["answer_ids"], len(prompt)

    return [as_row(r) for r in train], [as_row(r) for r in held], sources


def status(data: Path = DATA) -> dict[str, Any]:
    """Prompts by source and split, answers and answer tokens by mode, split and dtype."""
    pool = prompt_pool(data)
    answers = list(read_shards("answers-*.jsonl.gz", data))
    tokens: Counter[str] = Counter()
    for r in answers:
        tokens[f"{r['mode']} {r['split']} {r['dtype']}"] += len(r["answer_ids"])
    return {
        "prompts": dict(Counter(f"{p['source']} {p['split']}" for p in pool)),
        "answers": len(answers),
        "answer_tokens": sum(tokens.values()),
        "answer_tokens_by": dict(tokens),
    }


STAGES = ("prompts", "answers", "shards", "status")


def add_parsers(sub: Any) -> None:
    """This module's stages of `python -m specviz.train` (specviz/train/__main__.py)."""
    p = sub.add_parser("prompts", help="the evaluation model writes user turns (Magpie)")
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    a = sub.add_parser("answers", help="answer the prompts not answered yet")
    a.add_argument("--minutes", type=float, default=60.0)
    a.add_argument("--tag", default="", help="a prefix for this run's shard names (default: the date and time)")
    for s in (p, a):
        s.add_argument("--dtype", default="auto")
        s.add_argument("--data", type=Path, default=DATA)
    t = sub.add_parser(
        "shards", help="the answers as the draft trainer's shards, with soft labels from a teacher-forced pass"
    )
    t.add_argument("--out", type=Path, default=Path.home() / ".cache" / "specviz" / "datagen-shards")
    t.add_argument("--dtype", default="auto")
    t.add_argument("--data", type=Path, default=DATA)
    st = sub.add_parser("status", help="what the data holds")
    st.add_argument("--data", type=Path, default=DATA)


def run(args: argparse.Namespace) -> None:
    if args.stage == "prompts":
        write_prompts(args.batches, seed=args.seed, dtype=args.dtype, data=args.data)
    elif args.stage == "answers":
        write_answers(args.minutes, dtype=args.dtype, data=args.data, tag=args.tag)
    elif args.stage == "shards":
        held = training_shards(args.out, dtype=args.dtype, data=args.data)
        print(f"wrote {args.out}: train with `python -m specviz.train train --data {args.out} --holdout {held}`")
    else:
        print(json.dumps(status(args.data), indent=1))
