"""Train the EAGLE-style feature head for the embedded target (`python -m specviz.train feature`).

Data: the target's own answers from the generation rounds of `python -m specviz.train gen` (the same shards,
the same held-out prompt batches). A teacher-forced target pass over prompt + answer gives the
feature f_i (last hidden state, after the final norm) at every position: minutes on a CPU, far
cheaper than generating the answers.

The head reads pairs (f_i, e(t_{i+1})) and predicts f_{i+1}. Loss (EAGLE, arXiv 2401.15077,
eq. 3-5): smooth-L1 between predicted and real features + w x cross-entropy of the target's
distribution p(t_{i+2}) (computed from the real f_{i+1} over the head's output vocabulary)
against the head's, both on answer positions.

Training-time test (EAGLE-3, arXiv 2503.01840, section 3.3; HASS, arXiv 2408.15766): at
decoding time the second draft of a step is made from the head's own predicted feature, not a
real one. So the head is unrolled `depth` times: at depth k, pair i reads the feature the head
predicted for position i at depth k-1 (with the real token t_{i+1}), and attends to the real
pairs up to i-k plus its own chain's pairs — a diagonal attention mask over the concatenated
keys of every depth. Later draft positions are trained on what they will really see.

Everything is seeded. Pure torch: the target is loaded through specviz.models.lm.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from specviz.drafters.feature import FeatureHead, HeadConfig, eagle3_layers, save_head
from specviz.models.lm import hidden_of, load_model
from specviz.models.presets import DRAFT_DIR
from specviz.train.common import load_shards, optimizer_step, split, warmup_cosine
from specviz.train.feature_card import write_card

__all__ = [
    "Example",
    "Row",
    "depth_mask",
    "extract",
    "head_loss",
    "init_head",
    "pad",
    "resolve_layers",
    "shard_rows",
    "train_feature",
    "unroll",
]


@dataclass
class Example:
    ids: torch.Tensor  # [T] prompt + answer
    features: torch.Tensor  # [T, d] float16: the target's last hidden state at each position
    prompt_len: int
    greedy: torch.Tensor | None = None  # [T] the target's argmax over its full vocabulary (held-out only)
    inputs: torch.Tensor | None = None  # [T, n·d] bfloat16: the hidden states a multi-layer head reads


Row = tuple[list[int], int]  # prompt + answer ids, and the prompt's length


def shard_rows(shards: list[dict]) -> list[Row]:
    """The (prompt + answer, prompt length) rows of `python -m specviz.train gen|shards` shards."""
    rows: list[Row] = []
    for s in shards:
        for b, prompt in enumerate(s["prompt"]):
            n = int(s["valid"][b].sum())
            if n >= 2:
                rows.append((prompt + s["response"][b, :n].tolist(), len(prompt)))
    return rows


@torch.no_grad()
def extract(
    target: Any, rows: list[Row], batch: int = 16, with_greedy: bool = False, layers: tuple[int, ...] = ()
) -> list[Example]:
    """Teacher-forced target passes over each prompt + answer (right-padded, so positions are real):
    the target's last hidden state at every position, stored float16 (memory: 2 bytes × d per position),
    and with `layers` the hidden states entering those layers, concatenated (2 bytes × n·d more)."""
    rows = [r for r in rows if len(r[0]) - r[1] >= 2]
    rows.sort(key=lambda r: len(r[0]))  # similar lengths together: little padding
    model = target.model
    head_w = model.get_output_embeddings().weight
    # fast numerics attend one query row at a time (models.rows.rows_attention): exact, but ~10x slower over
    # whole answers; the head learns nothing from the last bits, so extraction uses the fused kernel
    attn = model.config._attn_implementation
    if attn != "sdpa":
        model.set_attn_implementation("sdpa")
    try:
        out = _extract(model, head_w, rows, batch, with_greedy, layers)
    finally:
        if attn != "sdpa":
            model.set_attn_implementation(attn)
    return out


def _extract(
    model: Any, head_w: torch.Tensor, rows: list[Row], batch: int, with_greedy: bool, layers: tuple[int, ...]
) -> list[Example]:
    out: list[Example] = []
    for j in range(0, len(rows), batch):
        chunk = rows[j : j + batch]
        width = max(len(r) for r, _ in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for b, (r, _) in enumerate(chunk):
            ids[b, : len(r)], mask[b, : len(r)] = torch.tensor(r), 1
        states = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, logits_to_keep=1).hidden_states
        hidden = hidden_of(states)
        fused = hidden_of(states, layers) if layers else None
        for b, (r, plen) in enumerate(chunk):
            f = hidden[b, : len(r)]
            greedy = (f @ head_w.T).argmax(-1) if with_greedy else None
            # bf16, not fp16: the hidden states before the final norm are not bounded
            inputs = None if fused is None else fused[b, : len(r)].to(torch.bfloat16)
            out.append(Example(torch.tensor(r), f.half(), plen, greedy, inputs))
        if (j // batch) % 64 == 63:
            print(f"features: {j + len(chunk)}/{len(rows)} answers", flush=True)
    return out


def depth_mask(length: int, k: int) -> torch.Tensor:
    """Which keys a depth-k query may attend to: [L, (k+1)L] booleans over the keys of depths 0..k.

    Query i (a chain anchored at real pair i-k) sees the real pairs 0..i-k and, at each depth
    m = 1..k, only its own chain's pair, at position i-k+m."""
    i = torch.arange(length)[:, None]
    j = torch.arange(length)[None, :]
    blocks = [j <= i - k] + [j == i - k + m for m in range(1, k + 1)]
    return torch.cat(blocks, 1)


def pad(batch: list[Example], d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Right-padded (ids [B,T], features [B,T,d] float32, answer mask [B,T-1], the multi-layer inputs
    [B,T,n·d] float32 or None): pair i is in the mask when the token it predicts, t_{i+2}, is an answer token."""
    width = max(len(e.ids) for e in batch)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    feats = torch.zeros(len(batch), width, d)
    answer = torch.zeros(len(batch), width - 1, dtype=torch.bool)
    first = batch[0].inputs
    inputs = None if first is None else torch.zeros(len(batch), width, first.shape[-1])
    for n, e in enumerate(batch):
        t = len(e.ids)
        ids[n, :t], feats[n, :t] = e.ids, e.features.float()
        if inputs is not None and e.inputs is not None:
            inputs[n, :t] = e.inputs.float()
        answer[n, max(e.prompt_len - 2, 0) : t - 2] = True
    return ids, feats, answer, inputs


def unroll(
    head: FeatureHead, feats: torch.Tensor, emb: torch.Tensor, depth: int, inputs: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """The head's predictions at depths 0..depth-1, each [B, L, d] with L = T - 1 pairs.

    feats [B, T, d] are the real features (a multi-layer head reads `inputs` [B, T, n·d] instead, fused),
    emb [B, L, d] the embeddings of t_1..t_{L}. At depth k,
    entry i is what the head predicts for f_{i+1} in a step whose last real pair was i - k, reading
    its own earlier predictions for positions i-k+1..i (what FeatureDrafter computes when it rolls
    forward with drafts equal to the real tokens)."""
    if (inputs is None) != (head.fuse is None):
        raise ValueError("a multi-layer head reads `inputs` (extract with its layers); a last-state head reads none")
    length = emb.shape[1]
    pos = torch.arange(length)
    keys: list[torch.Tensor] = []
    values: list[torch.Tensor] = []
    real = feats if inputs is None else head.fuse_features(inputs)
    inp = real[:, :-1]
    preds = []
    for k in range(depth):
        x, q, kk, vv = head.project(inp, emb, pos)
        keys.append(kk)
        values.append(vv)
        mask = None if k == 0 else depth_mask(length, k)
        preds.append(head.finish(x, q, torch.cat(keys, 2), torch.cat(values, 2), mask))
        # the next depth reads, at pair i, the feature this depth predicted for position i
        inp = torch.cat([real[:, :1], preds[-1][:, :-1]], 1)
    return preds


def head_loss(
    head: FeatureHead,
    batch: list[Example],
    embed: torch.Tensor,
    out_rows: torch.Tensor,
    depth: int,
    ce_weight: float,
    decay: float = 0.8,
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """The unrolled loss of one batch, and (agreeing, counted) per depth with the target's choice
    over the head's vocabulary."""
    ids, feats, answer, inputs = pad(batch, embed.shape[1])
    real_next = feats[:, 1:]  # f_{i+1}
    with torch.no_grad():
        p_next = (real_next[answer] @ out_rows.T).softmax(-1)  # the target's p(t_{i+2}) on the subset
        want = p_next.argmax(-1)
    total = torch.zeros(())
    stats = []
    for k, pred in enumerate(unroll(head, feats, embed[ids[:, 1:]], depth, inputs)):
        valid = answer.clone()
        valid[:, :k] = False  # no chain of depth k starts before pair 0
        sel = valid[answer]
        reg = F.smooth_l1_loss(pred[valid], real_next[valid])
        logp = (pred[valid] @ out_rows.T).log_softmax(-1)
        ce = -(p_next[sel] * logp).sum(-1).mean()
        total = total + decay**k * (reg + ce_weight * ce)
        stats.append((int((logp.argmax(-1) == want[sel]).sum()), int(sel.sum())))
    return total, stats


def resolve_layers(text: str, num_layers: int) -> tuple[int, ...]:
    """--feature-layers → HeadConfig.layers: "last" → (), "eagle3" → `eagle3_layers`, "2,15,27" → (2, 15, 27).

    Raises SystemExit naming the choices when `text` is none of them or an index is out of 0..num_layers."""
    if text == "last":
        return ()
    try:
        taps = eagle3_layers(num_layers) if text == "eagle3" else tuple(int(x) for x in text.split(","))
    except ValueError:
        taps = ()
    if not taps or len(set(taps)) < len(taps) or not all(0 <= i <= num_layers for i in taps):
        raise SystemExit(
            f"--feature-layers {text!r}: use last, eagle3, or hidden_states indices 0..{num_layers} like 2,15,27"
        )
    return taps


def init_head(target: Any, layers: tuple[int, ...] = ()) -> FeatureHead:
    """fc starts as "pass the feature through", the final norm as the target's: at step 0 the head
    predicts f̂_{i+1} ≈ f_i, and training learns the change. With `layers` (EAGLE-3) the fusion of
    those hidden states starts random, as EAGLE-3's does."""
    cfg = dataclasses.replace(
        HeadConfig.from_target(target.model.config, target.name),
        layers=layers,
        feature="hidden-states" if layers else "last-hidden-state",
    )
    head = FeatureHead(cfg)
    d = cfg.hidden_size
    with torch.no_grad():
        for prm in head.parameters():
            if prm.dim() == 2:
                torch.nn.init.normal_(prm, std=0.02)
        head.fc.weight[:, d:] += torch.eye(d)
        head.o_proj.weight.mul_(0.1)
        head.down_proj.weight.mul_(0.1)
        norm = target.model.get_decoder().norm.weight if hasattr(target.model, "get_decoder") else None
        if norm is not None:
            head.norm.weight.copy_(norm)
    return head


@torch.no_grad()
def evaluate(
    head: FeatureHead, data: list[Example], embed: torch.Tensor, out_rows: torch.Tensor, depth: int, sub: torch.Tensor
) -> list[float]:
    """Held-out, teacher-forced: per draft position k, how often the head's argmax is the target's
    own greedy token (over its full vocabulary) — the chance the k-th draft of a step is accepted
    under greedy verification, given the drafts before it were."""
    head.eval()
    hits, counts = [0] * depth, [0] * depth
    for j in range(0, len(data), 8):
        batch = data[j : j + 8]
        ids, feats, answer, inputs = pad(batch, embed.shape[1])
        greedy = torch.zeros_like(ids)
        for n, e in enumerate(batch):
            assert e.greedy is not None, "held-out examples carry the target's greedy tokens (extract with_greedy)"
            greedy[n, : len(e.ids)] = e.greedy
        for k, pred in enumerate(unroll(head, feats, embed[ids[:, 1:]], depth, inputs)):
            valid = answer.clone()
            valid[:, :k] = False
            choice = sub[(pred[valid] @ out_rows.T).argmax(-1)]
            hits[k] += int((choice == greedy[:, 1:][valid]).sum())
            counts[k] += int(valid.sum())
    head.train()
    return [h / max(c, 1) for h, c in zip(hits, counts, strict=True)]


def coverage(data: list[Example], sub: torch.Tensor) -> float:
    """Share of the target's greedy tokens at held-out answer positions that the head's reduced
    vocabulary `sub` holds: an upper bound on its agreement (FR-Spec, arXiv 2502.14856)."""
    hit = total = 0
    for e in data:
        assert e.greedy is not None
        g = e.greedy[e.prompt_len - 1 : len(e.ids) - 1]
        hit += int(torch.isin(g, sub).sum())
        total += len(g)
    return hit / max(total, 1)


def expected_tokens(agree: list[float]) -> float:
    """Tokens per step if position k's agreement were its acceptance given the ones before:
    1 + a0 + a0 a1 + ... (the evaluation model's own token counts 1)."""
    total, run = 1.0, 1.0
    for a in agree:
        run *= a
        total += run
    return total


def train_feature(
    data: Path,
    out: Path,
    steps: int,
    depth: int = 4,
    batch: int = 8,
    lr: float = 1e-3,
    ce_weight: float = 0.3,
    seed: int = 0,
    holdout: int = 2,
    eval_every: int = 200,
    token_map_from: Path = DRAFT_DIR,
    max_minutes: float | None = None,
    warm_fraction: float = 0.5,
    max_heldout: int = 256,
    init_from: Path | None = None,
    layers: str = "last",
) -> dict[str, Any]:
    """Train and save the head; returns the statistics written to training.json and the model card.

    `data` is either data/distill (the answers of `python -m specviz.train answers`, split by each
    prompt's `split`: held-out prompts are never trained on; at most `max_heldout` held-out answers
    are scored) or a folder of `gen`/`shards` shards (the last `holdout` prompt batches held out).
    Every `eval_every` steps the held-out agreement is recorded against the answer tokens trained on
    so far (`curve`): is it still rising at the end? `init_from` (a head's folder, e.g. the shipped one)
    trains that head further instead of a fresh one. `layers` (`resolve_layers`: "last", "eagle3" or
    hidden_states indices "2,15,27") trains a head that reads those hidden states fused (EAGLE-3) instead.

    Raises SystemExit when `layers` cannot be read or `init_from` was trained on other layers."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    t_start = time.time()
    target = load_model("default", "cpu")
    taps = resolve_layers(layers, int(target.model.config.num_hidden_layers))
    if any(data.glob("answers-*.jsonl.gz")):
        from specviz.train.data import answer_rows

        train_rows, test_rows, sources = answer_rows(data, target.tokenizer, max_heldout)
        rounds = 1
    else:
        shards = load_shards(data)
        if len({s["batch"] for s in shards}) <= holdout:
            raise SystemExit(
                f"need more than {holdout} prompt batches in {data}; run `python -m specviz.train gen` first"
            )
        train_shards, test_shards = split(shards, holdout)
        train_rows, test_rows, sources = shard_rows(train_shards), shard_rows(test_shards), {}
        rounds = len({s["round"] for s in train_shards})
    token_map = json.loads((token_map_from / "token_map.json").read_text())["target_ids"]
    sub = torch.tensor(token_map)
    embed = target.model.get_input_embeddings().weight.detach().float()
    out_rows = target.model.get_output_embeddings().weight.detach().float()[sub]
    print(f"{len(train_rows)} train / {len(test_rows)} held-out answers: extracting features", flush=True)
    if init_from is not None:
        was = HeadConfig(**json.loads((init_from / "head_config.json").read_text())).layers
        if was != taps:
            raise SystemExit(f"{init_from} reads layers {list(was) or 'last'}, not {list(taps) or 'last'}")
    train_set = extract(target, train_rows, layers=taps)
    test_set = extract(target, test_rows, with_greedy=True, layers=taps)
    extract_min = (time.time() - t_start) / 60
    head = init_head(target, taps)
    previous = None
    if init_from is not None:
        from safetensors.torch import load_file

        head.load_state_dict({k: v.float() for k, v in load_file(str(init_from / "model.safetensors")).items()})
        old = json.loads((init_from / "training.json").read_text()) if (init_from / "training.json").exists() else {}
        previous = {"from": str(init_from), "answer_tokens": old.get("train_answer_tokens"), "steps": old.get("steps")}
    n_params = sum(p.numel() for p in head.parameters())
    answer_tokens = sum(len(e.ids) - e.prompt_len for e in train_set)
    print(
        f"{len(train_set)} train / {len(test_set)} held-out answers ({answer_tokens} answer tokens); "
        f"features in {extract_min:.1f} min; head {n_params / 1e6:.2f}M params",
        flush=True,
    )
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.95))
    sched = warmup_cosine(opt, steps)
    agree0 = evaluate(head, test_set, embed, out_rows, depth, sub)
    print(f"start: held-out agreement by position {[round(a, 3) for a in agree0]}", flush=True)
    best, best_agree, best_state, best_step = expected_tokens(agree0), agree0, copy.deepcopy(head.state_dict()), 0
    curve = [{"step": 0, "answer_tokens_seen": 0, "agreement": agree0, "tokens_per_step": best}]
    t0, step, seen = time.time(), 0, 0
    # where the target computes in bf16 (auto on a CPU with fast bf16), the head will draft in bf16 too:
    # train its matmuls in bf16 (weights, optimiser and loss stay float32), ~1.5x faster per step here
    mixed = target.dtype == torch.bfloat16
    warm_steps = int(warm_fraction * steps)
    head.train()
    while step < steps:
        order = sorted(range(len(train_set)), key=lambda i: len(train_set[i].ids) + 8 * rng.random())
        chunks = [order[j : j + batch] for j in range(0, len(order), batch)]
        rng.shuffle(chunks)
        for chunk in chunks:
            # curriculum: the cheap one-position loss first, then the unrolled training-time test
            depth_now = 1 if step < warm_steps else depth
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
                loss, stats = head_loss(head, [train_set[i] for i in chunk], embed, out_rows, depth_now, ce_weight)
            optimizer_step(loss.float(), head, opt, sched)
            step += 1
            seen += sum(len(train_set[i].ids) - train_set[i].prompt_len for i in chunk)
            if step % 25 == 0:
                acc = " ".join(f"{h / max(c, 1):.2f}" for h, c in stats)
                print(
                    f"step {step}/{steps} loss {loss.item():.3f} train agree {acc} {time.time() - t0:.0f} s", flush=True
                )
            timed_out = max_minutes is not None and (time.time() - t0) / 60 > max_minutes
            if step % eval_every == 0 or step == steps or timed_out:
                agree = evaluate(head, test_set, embed, out_rows, depth, sub)
                tps = expected_tokens(agree)
                curve.append({"step": step, "answer_tokens_seen": seen, "agreement": agree, "tokens_per_step": tps})
                print(
                    f"step {step}: held-out agreement {[round(a, 3) for a in agree]} -> {tps:.2f} tokens/step",
                    flush=True,
                )
                if tps > best:
                    best, best_agree, best_state, best_step = tps, agree, copy.deepcopy(head.state_dict()), step
            if step >= steps or timed_out:
                steps = step
                break
    head.load_state_dict(best_state)
    minutes = (time.time() - t0) / 60
    stats_out: dict[str, Any] = {
        "params": n_params,
        "vocab": len(token_map),
        "feature": head.cfg.feature,
        "layers": list(taps),
        "depth": depth,
        "warm_steps": warm_steps,
        "steps": steps,
        "best_step": best_step,
        "batch": batch,
        "lr": lr,
        "ce_weight": ce_weight,
        "seed": seed,
        "rounds": rounds,
        "target_dtype": str(target.dtype).removeprefix("torch."),
        "mixed_precision": "bfloat16 autocast" if mixed else None,
        "continued_from": previous,
        "sources": sources,
        "train_answers": len(train_set),
        "train_answer_tokens": answer_tokens,
        "heldout_answers": len(test_set),
        "heldout_agreement_start": agree0,
        "heldout_agreement_by_position": best_agree,
        "heldout_expected_tokens_per_step": best,
        "heldout_vocab_coverage": coverage(test_set, sub),
        "answer_tokens_seen": seen,
        "curve": curve,
        "feature_minutes": extract_min,
        "train_minutes": minutes,
    }
    save_head(head, out, token_map, stats_out, target.tokenizer)
    write_card(out, stats_out)
    print(f"kept step {best_step}: {[round(a, 3) for a in best_agree]} -> {best:.2f} tokens/step; {minutes:.0f} min")
    return stats_out
