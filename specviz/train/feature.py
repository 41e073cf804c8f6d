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
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from specviz.drafters.feature import FeatureHead, HeadConfig, save_head
from specviz.models.lm import load_model
from specviz.models.presets import DRAFT_DIR
from specviz.train.common import curve_verdict, load_shards, optimizer_step, split, warmup_cosine

__all__ = [
    "Example",
    "Row",
    "add_decoding",
    "depth_mask",
    "extract",
    "head_loss",
    "init_head",
    "pad",
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
def extract(target: Any, rows: list[Row], batch: int = 16, with_greedy: bool = False) -> list[Example]:
    """Teacher-forced target passes over each prompt + answer (right-padded, so positions are real):
    the target's last hidden state at every position, stored float16 (memory: 2 bytes × d per position)."""
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
        out = _extract(model, head_w, rows, batch, with_greedy)
    finally:
        if attn != "sdpa":
            model.set_attn_implementation(attn)
    return out


def _extract(model: Any, head_w: torch.Tensor, rows: list[Row], batch: int, with_greedy: bool) -> list[Example]:
    out: list[Example] = []
    for j in range(0, len(rows), batch):
        chunk = rows[j : j + batch]
        width = max(len(r) for r, _ in chunk)
        ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for b, (r, _) in enumerate(chunk):
            ids[b, : len(r)], mask[b, : len(r)] = torch.tensor(r), 1
        hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True, logits_to_keep=1).hidden_states[
            -1
        ]
        for b, (r, plen) in enumerate(chunk):
            f = hidden[b, : len(r)]
            greedy = (f @ head_w.T).argmax(-1) if with_greedy else None
            out.append(Example(torch.tensor(r), f.half(), plen, greedy))
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


def pad(batch: list[Example], d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded (ids [B,T], features [B,T,d] float32, answer mask [B,T-1]): pair i is in the
    mask when the token it predicts, t_{i+2}, is an answer token."""
    width = max(len(e.ids) for e in batch)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    feats = torch.zeros(len(batch), width, d)
    answer = torch.zeros(len(batch), width - 1, dtype=torch.bool)
    for n, e in enumerate(batch):
        t = len(e.ids)
        ids[n, :t], feats[n, :t] = e.ids, e.features.float()
        answer[n, max(e.prompt_len - 2, 0) : t - 2] = True
    return ids, feats, answer


def unroll(head: FeatureHead, feats: torch.Tensor, emb: torch.Tensor, depth: int) -> list[torch.Tensor]:
    """The head's predictions at depths 0..depth-1, each [B, L, d] with L = T - 1 pairs.

    feats [B, T, d] are the real features, emb [B, L, d] the embeddings of t_1..t_{L}. At depth k,
    entry i is what the head predicts for f_{i+1} in a step whose last real pair was i - k, reading
    its own earlier predictions for positions i-k+1..i (what FeatureDrafter computes when it rolls
    forward with drafts equal to the real tokens)."""
    length = emb.shape[1]
    pos = torch.arange(length)
    keys: list[torch.Tensor] = []
    values: list[torch.Tensor] = []
    inp = feats[:, :-1]
    preds = []
    for k in range(depth):
        x, q, kk, vv = head.project(inp, emb, pos)
        keys.append(kk)
        values.append(vv)
        mask = None if k == 0 else depth_mask(length, k)
        preds.append(head.finish(x, q, torch.cat(keys, 2), torch.cat(values, 2), mask))
        # the next depth reads, at pair i, the feature this depth predicted for position i
        inp = torch.cat([feats[:, :1], preds[-1][:, :-1]], 1)
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
    ids, feats, answer = pad(batch, embed.shape[1])
    real_next = feats[:, 1:]  # f_{i+1}
    with torch.no_grad():
        p_next = (real_next[answer] @ out_rows.T).softmax(-1)  # the target's p(t_{i+2}) on the subset
        want = p_next.argmax(-1)
    total = torch.zeros(())
    stats = []
    for k, pred in enumerate(unroll(head, feats, embed[ids[:, 1:]], depth)):
        valid = answer.clone()
        valid[:, :k] = False  # no chain of depth k starts before pair 0
        sel = valid[answer]
        reg = F.smooth_l1_loss(pred[valid], real_next[valid])
        logp = (pred[valid] @ out_rows.T).log_softmax(-1)
        ce = -(p_next[sel] * logp).sum(-1).mean()
        total = total + decay**k * (reg + ce_weight * ce)
        stats.append((int((logp.argmax(-1) == want[sel]).sum()), int(sel.sum())))
    return total, stats


def init_head(target: Any) -> FeatureHead:
    """fc starts as "pass the feature through", the final norm as the target's: at step 0 the head
    predicts f̂_{i+1} ≈ f_i, and training learns the change."""
    cfg = HeadConfig.from_target(target.model.config, target.name)
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
        ids, feats, answer = pad(batch, embed.shape[1])
        greedy = torch.zeros_like(ids)
        for n, e in enumerate(batch):
            assert e.greedy is not None, "held-out examples carry the target's greedy tokens (extract with_greedy)"
            greedy[n, : len(e.ids)] = e.greedy
        for k, pred in enumerate(unroll(head, feats, embed[ids[:, 1:]], depth)):
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
) -> dict[str, Any]:
    """Train and save the head; returns the statistics written to training.json and the model card.

    `data` is either data/distill (the answers of `python -m specviz.train answers`, split by each
    prompt's `split`: held-out prompts are never trained on; at most `max_heldout` held-out answers
    are scored) or a folder of `gen`/`shards` shards (the last `holdout` prompt batches held out).
    Every `eval_every` steps the held-out agreement is recorded against the answer tokens trained on
    so far (`curve`): is it still rising at the end? `init_from` (a head's folder, e.g. the shipped one)
    trains that head further instead of a fresh one."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    t_start = time.time()
    target = load_model("default", "cpu")
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
    train_set = extract(target, train_rows)
    test_set = extract(target, test_rows, with_greedy=True)
    extract_min = (time.time() - t_start) / 60
    head = init_head(target)
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


def _decoding_lines(s: dict[str, Any]) -> str:
    """The card's decoding figures, once `bench` has measured them (training.json "decoding")."""
    d = s.get("decoding")
    if not d:
        return "- Decoding figures on the evaluation prompts (tokens per step, speed): docs/BENCHMARKS.md."
    return (
        f"\n## Measured decoding ({d['date']}, {d['cpu']}; docs/BENCHMARKS.md)\n"
        f"- {d['prompts']} held-out evaluation prompts, gamma {d['gamma']}, {d['max_new_tokens']} new tokens: greedy "
        f"**{d['tokens_per_step']:.2f} tokens per step**, sampling at T = 0.7 {d['sampling_tokens_per_step']:.2f}.\n"
        f"- Speed: **{d['speedup_vs_target']:.2f}x** the target alone (one interleaved run, full per-step logging); "
        f"{d['hf_assisted_ratio']:.2f}x Hugging Face assisted generation with the standalone draft."
    )


def _data_lines(s: dict[str, Any]) -> str:
    """Where the training answers came from: data/distill's sources, or the older `gen` rounds."""
    src = s.get("sources")
    if not src:
        return (
            f"- Data: the target's own answers from `python -m specviz.train gen` ({s['rounds']} round(s)): "
            f"{s['train_answers']} answers,\n  {s['train_answer_tokens']:,} answer tokens; the last prompt batches "
            f"({s['heldout_answers']} answers) are held out."
        )
    parts = ", ".join(f"{n:,} {k}" for k, n in sorted(src["train"].items()))
    return (
        f"- Data: data/distill (its README says how each prompt was made and how long the answers took): "
        f"{s['train_answers']:,} answers, **{s['train_answer_tokens']:,} answer tokens** ({parts}; source, mode, dtype).\n"
        f"  Held out by prompt (never trained on, in either mode): {s['heldout_answers']} answers scored."
    )


def _continued_line(s: dict[str, Any]) -> str:
    """Whether this head was trained from scratch or further from an earlier one (`--init-from`)."""
    prev = s.get("continued_from")
    if not prev or not prev.get("answer_tokens"):
        return ""
    return (
        f"\n- Trained further from the earlier head ({prev['answer_tokens']:,} answer tokens, {prev['steps']} steps), "
        "not from scratch: the curve below starts from its agreement."
    )


def _curve_lines(s: dict[str, Any]) -> str:
    """Held-out agreement against answer tokens trained on: is it still rising at the end?"""
    curve = s.get("curve")
    if not curve:
        return ""
    rows = "\n".join(
        f"| {c['step']} | {c['answer_tokens_seen']:,} | {c['agreement'][0]:.1%} | {c['tokens_per_step']:.2f} |"
        for c in curve
    )
    return (
        "\n## Held-out agreement against data (training.json `curve`)\n"
        "| step | answer tokens trained on | agreement, position 1 | implied tokens per step |\n"
        "|---|---|---|---|\n"
        f"{rows}\n\n{curve_verdict([c['agreement'][0] for c in curve])}"
    )


def write_card(out: Path, s: dict[str, Any]) -> None:
    """The model card: what the head reads, how it was trained, what it measured."""
    mb = (out / "model.safetensors").stat().st_size / 2**20
    by_pos = ", ".join(f"{k + 1}: {a:.1%}" for k, a in enumerate(s["heldout_agreement_by_position"]))
    start = ", ".join(f"{a:.1%}" for a in s["heldout_agreement_start"])
    (out / "README.md").write_text(f"""# specviz feature draft for SmolLM2-135M-Instruct (EAGLE-style head)

A draft that reads the evaluation model. A separate small draft model sees only the tokens; this
head also reads the target's **last hidden state** (after its final norm: the vector the target's
output layer turns into p) at every position the target has verified. It loads next to the
embedded target: `--draft feature` on the command line, the "feature draft" preset in the app (the
standalone draft stays `default` while it measures faster: docs/BENCHMARKS.md).

## Architecture, and why
- Input: the pair (f_i, e(t_(i+1))): the target's feature at position i and the embedding of the
  token actually sampled after it, concatenated and fused by one linear layer (2 x 576 -> 576).
  Feeding the sampled token resolves the uncertainty a feature alone leaves (EAGLE, arXiv 2401.15077).
- One Llama decoder layer at the target's width (576, 9 heads with 3 key/value heads, MLP 1536,
  RoPE theta 1e5), then the target's final norm (copied, trained): the output is a predicted feature
  f̂_(i+1) in the space of the real ones. Later drafts of a step roll forward on f̂.
- The target's embedding and output layer are reused and not stored. The output layer is cut to the
  {s["vocab"]} most frequent tokens of the target's answers (the standalone draft's FR-Spec subset,
  arXiv 2502.14856), so a draft token costs a small fraction of a target pass.
- Only the last layer's feature (EAGLE-1), not EAGLE-3's fusion of low, mid and high layers with direct
  token prediction: EAGLE-3 drops the feature loss because it scales to far more data than a 2-core CPU
  generates in an hour; with 10^5–10^6 answer tokens the feature loss is a useful extra signal, and the
  predicted feature is what the next draft reads. `meta.draft.layers` in a trace records [-1].
- Unlike EAGLE-1's reference layer, which skips the first layer's input norm, this layer keeps it, so the
  attention and MLP see inputs of a fixed scale whatever fc learns (fc starts as "pass the feature through").
- EAGLE-2's dynamic draft trees are not used here: drafts are chains of gamma tokens (trees are a
  separate piece of work in specviz, the same head can propose them).
- {s["params"] / 1e6:.2f}M parameters, stored as bfloat16 safetensors ({mb:.1f} MB), loaded in the target's dtype.

## Training (`python -m specviz.train feature`, seed {s["seed"]})
{_data_lines(s)}
  Features come from teacher-forced target passes over prompt + answer ({s["feature_minutes"]:.0f} min on the CPU,
  in {s.get("target_dtype", "float32")}, the dtype the app decodes in on that machine).{_continued_line(s)}
- Loss on answer positions: smooth-L1 between predicted and real features + {s["ce_weight"]} x cross-entropy to the
  target's distribution of the next token (EAGLE's two terms).
- Training-time test (EAGLE-3, arXiv 2503.01840; HASS, arXiv 2408.15766): after {s["warm_steps"]} steps of the
  one-position loss, unrolled {s["depth"]} times; at depth k the head reads its own predicted features with a
  diagonal attention mask, as it will when drafting the (k+1)-th token of a step; loss weight 0.8^k.
- AdamW, lr {s["lr"]}, warm-up then cosine decay, batch {s["batch"]} answers, {s["steps"]} steps (kept: the best held-out
  step, {s["best_step"]}), {s["train_minutes"]:.0f} minutes on a 2-core CPU.

## Measured (held-out answers, teacher-forced)
- Agreement with the target's greedy token by draft position: {by_pos}
  (at initialisation: {start}).
- Tokens per step these imply for gamma {s["depth"]} (1 + a1 + a1 a2 + ...): {s["heldout_expected_tokens_per_step"]:.2f}.
{_curve_lines(s)}
{_decoding_lines(s)}

License: Apache-2.0, as the target it is trained for.
""")


def add_decoding(out: Path, bench_json: Path) -> dict[str, Any]:
    """Record a `bench --json-out` result in the head's training.json and model card."""
    stats = json.loads((out / "training.json").read_text())
    b = json.loads(bench_json.read_text())
    stats["decoding"] = {
        "date": b["date"],
        "cpu": b["machine"]["cpu"],
        "prompts": b["prompts"],
        "gamma": b["gamma"],
        "max_new_tokens": b["max_new_tokens"],
        "tokens_per_step": b["tokens_per_step"],
        "sampling_tokens_per_step": b["sampling_t0.7"]["tokens_per_step"],
        "speedup_vs_target": b["speedup_vs_target"],
        "hf_assisted_ratio": b["hf_assisted_ratio"],
    }
    (out / "training.json").write_text(json.dumps(stats, indent=2) + "\n")
    write_card(out, stats)
    return stats
