"""What both trainers share (the standalone draft, specviz.train.draft; the feature head,
specviz.train.feature) and the data generator (specviz.train.data): the chat prompt's ids, the
distillation shards (safetensors, never pickle), the held-out split, the schedule and the step.

A module of its own so that neither trainer imports the other's internals (no import circle).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import torch

__all__ = ["TOPK", "chat_ids", "curve_verdict", "load_shards", "optimizer_step", "save_shard", "split", "warmup_cosine"]

TOPK = 32  # soft labels kept per answer position: the evaluation model's top-32 probabilities


def chat_ids(tok, prompt: str) -> list[int]:
    ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
    if not isinstance(ids, list):
        ids = ids["input_ids"]
    return [int(i) for i in ids]


def save_shard(path: Path, shard: dict) -> None:
    """Tensors only, as safetensors (never pickle): the ragged prompts are stored flat with their lengths."""
    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in shard.items() if k != "prompt"}
    tensors["prompt_flat"] = torch.tensor([t for row in shard["prompt"] for t in row], dtype=torch.int64)
    tensors["prompt_len"] = torch.tensor([len(row) for row in shard["prompt"]], dtype=torch.int64)
    save_file(tensors, str(path))


def load_shards(data: Path) -> list[dict]:
    """Every shard, sorted by prompt batch; each carries its batch number as "batch"."""
    from safetensors.torch import load_file

    shards = []
    for p in sorted(data.glob("shard-*.safetensors")):
        t: dict = load_file(str(p))
        parts = p.name.split(".")[0].split("-")  # shard-NNN or shard-NNN-rR
        t["batch"], t["round"] = int(parts[1]), int(parts[2][1:]) if len(parts) > 2 else 0
        flat, lens = t.pop("prompt_flat").tolist(), t.pop("prompt_len").tolist()
        starts = [0, *itertools.accumulate(lens)][:-1]
        t["prompt"] = [flat[a : a + n] for a, n in zip(starts, lens, strict=True)]
        shards.append(t)
    return shards


def split(shards: list[dict], holdout: int) -> tuple[list[dict], list[dict]]:
    """(train, held-out): the last `holdout` prompt batches are held out in every round, so no
    held-out prompt is ever trained on; held-out answers come from round 0 only, so the figure
    stays comparable between data sizes."""
    held = set(sorted({s["batch"] for s in shards})[-holdout:]) if holdout > 0 else set()  # [-0:] is everything
    train = [s for s in shards if s["batch"] not in held]
    return train, [s for s in shards if s["batch"] in held and s["round"] == 0]


def warmup_cosine(opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first 5% of steps, then cosine decay to 0 at `steps`."""
    warmup = max(1, steps // 20)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))
    )


def optimizer_step(
    loss: torch.Tensor, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler
) -> None:
    """Backward, clip the gradient norm to 1, step the optimiser and the schedule."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()


def curve_verdict(agreements: list[float]) -> str:
    """A model card's sentence on a held-out curve's end: still rising, or flat (over the last three scores)."""
    last = agreements[-3:]
    rising = "still rising" if len(last) > 1 and last[-1] > last[0] + 0.002 else "flat"
    return (
        f"Over the last three scores it is {rising} (the learning rate decays to 0 at the last step "
        "(cosine), so a flattening there is partly the schedule; answer tokens count repeats over epochs)."
    )
