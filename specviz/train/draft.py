"""Train the embedded default draft model for SmolLM2-135M-Instruct by distillation.

    python -m specviz.train gen   --out ~/.cache/specviz/distill             # the target writes text
    python -m specviz.train gen   --round 1                                  # more: same prompts, new seeds
    python -m specviz.train train --data ~/.cache/specviz/distill --hidden 256 --vocab 8192 --out assets/draft
    python -m specviz.train feature --data ~/.cache/specviz/distill --out assets/feature_draft  # EAGLE-style head

Stage 1 (sequence-level distillation): the target answers the training prompts
(assets/prompts/train.txt) with its chat template, sampled at temperature 0.7 (every fourth
batch greedy); its top-32 probabilities at every answer position are kept as soft labels.
Stage 2: a small Llama-shaped draft is trained on those answers, with loss
KL(target top-32 ‖ draft) + cross-entropy on the target's tokens. Cheap by construction:
- it starts from the target: with the target's hidden size it copies its embeddings and the
  layers --layers names; with a smaller --hidden, its embeddings are the target's projected on
  their principal directions and its layers start fresh;
- its vocabulary is the target's most frequent tokens in the distillation text (FR-Spec): the
  output layer, which dominates a small model's cost, shrinks ~6x. token_map.json maps the
  draft's ids to the target's; the drafter scatters q back onto the full vocabulary.
The last two prompt batches are held out (in every round) for the agreement figure, and the
weights that agree best with the target there are kept. Everything is seeded; on a 2-core CPU
one round of generation takes ~25 min, and training ~1 min per 100 steps.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from specviz.models.lm import load_model
from specviz.models.presets import REPO_ROOT
from specviz.models.vocab import TokenMap
from specviz.train.common import (
    TOPK,
    chat_ids,
    load_shards,
    optimizer_step,
    save_shard,
    split,
    warmup_cosine,
)
from specviz.train.draft_card import write_card

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

PROMPTS = REPO_ROOT / "assets" / "prompts"


def generate(
    out: Path,
    batch: int = 32,
    max_new_tokens: int = 128,
    seed: int = 0,
    limit: int | None = None,
    reverse: bool = False,
    round_: int = 0,
) -> None:
    """Stage 1: the target answers the training prompts; keep its top-32 distribution per position.

    Round R > 0 answers the same prompts again with other seeds (and greedy on other batches), for
    more data than the prompt set alone gives; its shards are named shard-NNN-rR."""
    out.mkdir(parents=True, exist_ok=True)
    target = load_model("default", "cpu")
    tok, model = target.tokenizer, target.model
    prompts = [p for p in (PROMPTS / "train.txt").read_text().splitlines() if p.strip()][:limit]
    pad = tok.pad_token_id if tok.pad_token_id is not None else target.eos_token_ids[0]
    # a second process with reverse=True can work from the other end: shards are independent and seeded
    shards = list(enumerate(range(0, len(prompts), batch)))
    for shard, start in reversed(shards) if reverse else shards:
        path = out / (f"shard-{shard:03d}" + (f"-r{round_}" if round_ else "") + ".safetensors")
        if path.exists():
            continue
        t0 = time.time()
        rows = [chat_ids(tok, p) for p in prompts[start : start + batch]]
        width = max(map(len, rows))
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])  # left padding
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        torch.manual_seed(seed + shard + 1000 * round_)
        greedy = (shard + round_) % 4 == 3
        gen = model.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=not greedy,
            temperature=None if greedy else 0.7,
            top_k=None,
            top_p=None,
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            output_logits=True,
            return_dict_in_generate=True,
        )
        resp = gen.sequences[:, width:]  # [B, T]
        logits = torch.stack(gen.logits, 1).float()  # [B, T, V]: the target's logits at each answer position
        probs, index = torch.topk(logits.softmax(-1), TOPK, dim=-1)
        # an answer ends at its first EOS; later positions are padding
        eos = torch.isin(resp, torch.tensor(target.eos_token_ids))
        ended_before = (eos.cumsum(1) - eos.long()) > 0
        tmp = path.with_suffix(".tmp")  # written whole, then renamed: a killed run leaves no half shard
        save_shard(
            tmp, {"prompt": rows, "response": resp, "valid": ~ended_before, "probs": probs.half(), "index": index.int()}
        )
        tmp.rename(path)
        print(f"{path.name}: {int((~ended_before).sum())} tokens in {time.time() - t0:.0f} s", flush=True)


def build_token_map(shards: list[dict], size: int) -> list[int]:
    """The draft's vocabulary: the `size` - 1 target tokens most frequent in the distillation text
    (answers and prompts, which include the chat template); the last draft id stands for any other token."""
    counts: Counter[int] = Counter()
    for s in shards:
        counts.update(s["response"][s["valid"]].tolist())
        for row in s["prompt"]:
            counts.update(row)
    return [t for t, _ in counts.most_common(size - 1)]


def examples(
    shards: list[dict], lookup: torch.Tensor, unk: int
) -> list[tuple[torch.Tensor, int, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per answer: (draft-vocab input ids, prompt length, hard labels, soft-label ids, soft-label probs)."""
    out = []
    for s in shards:
        for b, prompt in enumerate(s["prompt"]):
            n = int(s["valid"][b].sum())
            if n < 2:
                continue
            resp = s["response"][b, :n]
            ids = torch.tensor(prompt + resp.tolist())
            soft_idx = lookup[s["index"][b, :n].long()]  # target ids → draft ids (unk where absent)
            soft_p = s["probs"][b, :n].float().masked_fill(soft_idx == unk, 0.0)
            soft_p = soft_p / soft_p.sum(-1, keepdim=True).clamp_min(1e-9)
            out.append((lookup[ids], len(prompt), lookup[resp], soft_idx, soft_p))
    return out


def init_draft(
    target: torch.nn.Module, token_map: list[int], layers: list[int], hidden: int | None = None
) -> torch.nn.Module:
    """A small Llama over the reduced vocabulary, started from the target.

    With the target's hidden size, `layers` names the target layers to copy. With a smaller
    `hidden`, the embeddings are the target's projected on their top principal directions and
    len(layers) fresh layers are trained from scratch.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    tcfg = target.config
    width = hidden or tcfg.hidden_size
    same = width == tcfg.hidden_size
    heads = tcfg.num_attention_heads if same else max(1, width // 64)
    cfg = LlamaConfig(
        vocab_size=len(token_map) + 1,
        hidden_size=width,
        intermediate_size=tcfg.intermediate_size if same else 4 * width,
        num_hidden_layers=len(layers),
        num_attention_heads=heads,
        num_key_value_heads=tcfg.num_key_value_heads if same else heads,
        max_position_embeddings=tcfg.max_position_embeddings,
        rms_norm_eps=tcfg.rms_norm_eps,
        rope_parameters=getattr(tcfg, "rope_parameters", None),
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    draft = LlamaForCausalLM(cfg)
    sd = target.state_dict()
    with torch.no_grad():
        emb = sd["model.embed_tokens.weight"][token_map].float()  # a bf16 target too: SVD runs in float32
        emb = torch.cat([emb, emb.mean(0, keepdim=True)])
        if same:
            draft.model.embed_tokens.weight.copy_(emb)
            draft.model.norm.weight.copy_(sd["model.norm.weight"])
            for i, src in enumerate(layers):
                prefix = f"model.layers.{src}."
                own = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
                draft.model.layers[i].load_state_dict(own)
        else:
            # PCA: keep the directions along which the target's token embeddings vary most
            centred = emb - emb.mean(0, keepdim=True)
            _, _, v = torch.linalg.svd(centred, full_matrices=False)
            proj = centred @ v[:width].T
            draft.model.embed_tokens.weight.copy_(proj)
    draft.tie_weights()
    return draft


def load_draft(folder: Path) -> tuple[torch.nn.Module, list[int], dict]:
    """A draft `save` wrote, to train further: (the model in float32, its token map's target ids, its
    training.json or {}). Safetensors only; raises SystemExit with what is missing."""
    from transformers import LlamaForCausalLM

    if not (folder / "token_map.json").is_file() or not (folder / "model.safetensors").is_file():
        raise SystemExit(f"--init-from {folder}: not a draft folder (no token_map.json or model.safetensors)")
    draft = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, use_safetensors=True)
    token_map = list(json.loads((folder / "token_map.json").read_text())["target_ids"])
    stats = json.loads(p.read_text()) if (p := folder / "training.json").is_file() else {}
    return draft, token_map, stats


def _batches(data: list, size: int, rng: random.Random) -> list[list]:
    order = sorted(range(len(data)), key=lambda i: len(data[i][0]) + rng.random())  # similar lengths together
    chunks = [[data[i] for i in order[j : j + size]] for j in range(0, len(order), size)]
    rng.shuffle(chunks)
    return chunks


def _loss(draft: torch.nn.Module, batch: list, unk: int, hard_weight: float) -> tuple[torch.Tensor, int, int]:
    width = max(len(x[0]) for x in batch)
    ids = torch.full((len(batch), width), unk)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    for b, (x, *_rest) in enumerate(batch):
        ids[b, : len(x)] = x
        mask[b, : len(x)] = 1
    hidden = draft.model(input_ids=ids, attention_mask=mask).last_hidden_state  # [B, S, H]
    # only the positions that predict answer tokens need the output layer
    rows = torch.cat([hidden[b, plen - 1 : plen - 1 + len(hard)] for b, (_x, plen, hard, _i, _p) in enumerate(batch)])
    logp = draft.lm_head(rows).float().log_softmax(-1)  # [N, Vd]
    hard = torch.cat([x[2] for x in batch]).long()
    sidx = torch.cat([x[3] for x in batch]).long()
    sp = torch.cat([x[4] for x in batch])
    kl = -(sp * logp.gather(-1, sidx)).sum(-1)  # cross-entropy to the soft labels (KL + a constant)
    ok = hard != unk
    ce = -logp[ok].gather(-1, hard[ok].view(-1, 1)).view(-1)
    hits = int(
        (logp[:, :unk].argmax(-1) == sidx[:, 0]).sum()
    )  # agreement with the target's greedy choice (unk is never proposed)
    n_tok = len(hard)
    loss = kl.mean() + hard_weight * ce.mean()
    return loss, hits, n_tok


def train(
    data: Path,
    out: Path,
    steps: int,
    vocab: int = 6144,
    layers: tuple[int, ...] = (0, 1),
    batch: int = 16,
    lr: float = 5e-4,
    hard_weight: float = 0.5,
    seed: int = 0,
    holdout: int = 2,
    hidden: int | None = None,
    weight_decay: float = 0.0,
    eval_every: int = 100,
    init_from: Path | None = None,
) -> dict:
    """Distil a draft from the shards in `data` into `out` (weights, token map, training.json, card); with
    `init_from`, train that draft further (its weights and vocabulary; `vocab`, `layers`, `hidden` unused)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    shards = load_shards(data)
    if len({s["batch"] for s in shards}) <= holdout:
        raise SystemExit(f"need more than {holdout} prompt batches in {data}; run the gen stage first")
    train_shards, test_shards = split(shards, holdout)
    # float32 whatever the CPU's fast dtype: the draft starts from the target's weights (SVD has no bf16 kernel)
    target = load_model("default", "cpu", "float32")
    earlier: dict = {}
    if init_from is not None:
        draft, token_map, earlier = load_draft(init_from)
        layers = tuple(earlier.get("layers_from_target", layers))
    else:
        token_map = build_token_map(train_shards, vocab)
    unk = len(token_map)
    lookup = torch.full((target.vocab_size,), unk, dtype=torch.long)
    lookup[torch.tensor(token_map)] = torch.arange(len(token_map))
    train_set = examples(train_shards, lookup, unk)
    test_set = examples(test_shards, lookup, unk)
    covered = sum(int((x[2] != unk).sum()) for x in test_set) / sum(len(x[2]) for x in test_set)
    if init_from is None:
        draft = init_draft(target.model, token_map, list(layers), hidden)
    target_hidden = target.model.config.hidden_size
    tokenizer = target.tokenizer
    del target
    n_params = sum(p.numel() for p in draft.parameters())
    print(
        f"{len(train_set)} train / {len(test_set)} held-out answers; draft {n_params / 1e6:.1f}M params; "
        f"vocab covers {covered:.1%} of held-out answer tokens",
        flush=True,
    )
    opt = torch.optim.AdamW(draft.parameters(), lr=lr, weight_decay=weight_decay, betas=(0.9, 0.98))
    sched = warmup_cosine(opt, steps)
    t0, step = time.time(), 0
    agree0 = evaluate(draft, test_set, unk)
    print(f"start: held-out greedy agreement {agree0:.1%}", flush=True)
    # keep the weights that do best on held-out answers: a small corpus is overfitted quickly
    best, best_state, best_step = agree0, copy.deepcopy(draft.state_dict()), 0
    seen = 0  # answer tokens trained on so far: the curve's x axis
    curve = [{"step": 0, "answer_tokens_seen": 0, "agreement": agree0}]
    while step < steps:
        for chunk in _batches(train_set, batch, rng):
            draft.train()
            loss, hits, n_tok = _loss(draft, chunk, unk, hard_weight)
            optimizer_step(loss, draft, opt, sched)
            step += 1
            seen += sum(len(x[2]) for x in chunk)
            if step % 50 == 0 or step == steps:
                print(
                    f"step {step}/{steps} loss {loss.item():.3f} train-agree {hits / n_tok:.1%} "
                    f"{time.time() - t0:.0f} s",
                    flush=True,
                )
            if step % eval_every == 0 or step == steps:
                held = evaluate(draft, test_set, unk)
                print(f"step {step}: held-out greedy agreement {held:.1%}", flush=True)
                curve.append({"step": step, "answer_tokens_seen": seen, "agreement": held})
                if held > best:
                    best, best_state, best_step = held, copy.deepcopy(draft.state_dict()), step
            if step >= steps:
                break
    draft.load_state_dict(best_state)
    agree = best
    minutes = (time.time() - t0) / 60
    print(f"held-out greedy agreement {agree:.1%} (best, step {best_step} of {steps}), {minutes:.1f} min", flush=True)
    stats = {
        "params": n_params,
        "vocab": len(token_map) + 1,
        "layers_from_target": list(layers),
        "steps": steps,
        "best_step": best_step,
        "hidden": draft.config.hidden_size,
        "target_hidden": target_hidden,
        "weight_decay": weight_decay,
        "batch": batch,
        "lr": lr,
        "hard_weight": hard_weight,
        "seed": seed,
        "rounds": len({s["round"] for s in train_shards}),
        "greedy_answers": _greedy_answers(data, train_shards),
        "train_answers": len(train_set),
        "train_tokens": sum(len(x[2]) for x in train_set),
        # made by `python -m specviz.train shards` from data/distill: where the answers came from
        "distill_sources": _distill_sources(data),
        "heldout_agreement_start": agree0,
        "heldout_agreement": agree,
        "heldout_vocab_coverage": covered,
        "train_minutes": minutes,
        "curve": curve,
    }
    if init_from is not None:  # what it was trained from, for the card
        stats["init_from"] = {
            "folder": str(init_from),
            "steps": earlier.get("steps"),
            "train_minutes": earlier.get("train_minutes"),
            "lr": earlier.get("lr"),
        }
    save(draft, token_map, out, stats, tokenizer)
    return stats


def _greedy_answers(data: Path, train_shards: list[dict]) -> int:
    if src := _distill_sources(data):  # data/distill: each answer's mode is in its source name
        return sum(n for k, n in src.get("train", {}).items() if "greedy" in k)
    # gen() answers batch b of round r greedily when (b + r) % 4 == 3
    return sum(len(s["prompt"]) for s in train_shards if (s["batch"] + s["round"]) % 4 == 3)


def _distill_sources(data: Path) -> dict | None:
    manifest = data / "datagen-manifest.json"
    try:
        return json.loads(manifest.read_text()).get("sources") if manifest.is_file() else None
    except ValueError:
        return None


@torch.no_grad()
def evaluate(draft: torch.nn.Module, data: list, unk: int) -> float:
    """Teacher-forced: how often the draft's argmax is the target's argmax, on held-out answers."""
    draft.eval()
    hits = total = 0
    for j in range(0, len(data), 16):
        _, h, n = _loss(draft, data[j : j + 16], unk, 0.0)
        hits, total = hits + h, total + n
    return hits / max(total, 1)


def save(
    draft: torch.nn.Module, token_map: list[int], out: Path, stats: dict, tokenizer: PreTrainedTokenizerBase
) -> None:
    """The draft as safetensors (bf16), token_map.json with the target's vocabulary fingerprint, and its card."""
    out.mkdir(parents=True, exist_ok=True)
    draft = draft.to(torch.bfloat16)  # halves the file; loaded back as float32 on CPU
    draft.config.dtype = "float32"
    draft.save_pretrained(out, safe_serialization=True)
    (out / "token_map.json").write_text(TokenMap.dumps(token_map, tokenizer, "SmolLM2-135M-Instruct"))
    (out / "training.json").write_text(json.dumps(stats, indent=2))
    write_card(out, stats)


STAGES = ("gen", "train", "feature", "card")


def add_parsers(sub: Any) -> None:
    """This module's stages of `python -m specviz.train` (specviz/train/__main__.py)."""
    g = sub.add_parser("gen", help="stage 1: the target answers the training prompts")
    g.add_argument("--out", type=Path, default=Path.home() / ".cache" / "specviz" / "distill")
    g.add_argument("--limit", type=int, help="only the first N prompts")
    g.add_argument("--reverse", action="store_true", help="work from the last shard (run a second process)")
    g.add_argument("--round", type=int, default=0, help="answer the prompts again with other seeds (R > 0)")
    t = sub.add_parser("train", help="stage 2: distil the draft")
    t.add_argument("--data", type=Path, default=Path.home() / ".cache" / "specviz" / "distill")
    t.add_argument("--out", type=Path, default=REPO_ROOT / "assets" / "draft")
    t.add_argument("--steps", type=int, default=1500)
    t.add_argument("--vocab", type=int, default=6144)
    t.add_argument("--layers", default="0,1", help="which target layers initialise the draft's layers")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--hidden", type=int, help="draft hidden size (default: the target's, with copied layers)")
    t.add_argument("--init-from", type=Path, help="train this draft folder further (e.g. assets/draft), warm restart")
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument(
        "--holdout",
        type=int,
        default=2,
        help="the last N prompt batches are held out (`python -m specviz.train shards` says N)",
    )
    f = sub.add_parser("feature", help="train the EAGLE-style feature head on the same answers (specviz.train.feature)")
    f.add_argument(
        "--data",
        type=Path,
        default=Path.home() / ".cache" / "specviz" / "distill",
        help="gen/shards shards, or data/distill (the answers: held out by each prompt's split)",
    )
    f.add_argument("--max-heldout", type=int, default=256, help="held-out answers scored (data/distill only)")
    f.add_argument("--eval-every", type=int, default=200, help="steps between held-out scores (the curve)")
    f.add_argument("--init-from", type=Path, help="train this head folder further (e.g. assets/feature_draft)")
    f.add_argument("--out", type=Path, default=REPO_ROOT / "assets" / "feature_draft")
    f.add_argument("--steps", type=int, default=2000)
    f.add_argument("--depth", type=int, default=4, help="training-time test: draft positions unrolled")
    f.add_argument("--batch", type=int, default=8)
    f.add_argument("--lr", type=float, default=1e-3)
    f.add_argument("--ce-weight", type=float, default=0.3)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--max-minutes", type=float, help="stop training after this long (then keep the best step)")
    f.add_argument("--warm-fraction", type=float, default=0.5, help="share of steps trained one position deep first")
    f.add_argument(
        "--feature-layers",
        default="last",
        help="what the head reads: last (the last hidden state, EAGLE-1), eagle3 (a low, a middle and a high "
        "layer fused, EAGLE-3), or hidden_states indices like 2,15,27",
    )
    f.add_argument(
        "--holdout",
        type=int,
        default=2,
        help="the last N prompt batches are held out (`python -m specviz.train shards` says N)",
    )
    c = sub.add_parser("card", help="write a bench --json-out result into a feature head's model card")
    c.add_argument("bench_json", type=Path)
    c.add_argument("--out", type=Path, default=REPO_ROOT / "assets" / "feature_draft")


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.stage == "card":
        from specviz.train.feature_card import add_decoding

        add_decoding(args.out, args.bench_json)
    elif args.stage == "feature":
        from specviz.train.feature import train_feature

        train_feature(
            args.data,
            args.out,
            args.steps,
            depth=args.depth,
            batch=args.batch,
            lr=args.lr,
            ce_weight=args.ce_weight,
            seed=args.seed,
            max_minutes=args.max_minutes,
            warm_fraction=args.warm_fraction,
            holdout=args.holdout,
            max_heldout=args.max_heldout,
            eval_every=args.eval_every,
            init_from=args.init_from,
            layers=args.feature_layers,
        )
    elif args.stage == "gen":
        generate(args.out, limit=args.limit, reverse=args.reverse, round_=args.round)
    else:
        layers = tuple(int(x) for x in args.layers.split(","))
        train(
            args.data,
            args.out,
            args.steps,
            args.vocab,
            layers,
            lr=args.lr,
            seed=args.seed,
            hidden=args.hidden,
            weight_decay=args.weight_decay,
            holdout=args.holdout,
            init_from=args.init_from,
        )
