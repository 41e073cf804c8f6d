"""The feature head's model card (assets/feature_draft/README.md): what it reads, how it was trained,
what it measured; `python -m specviz.train card` adds a bench result. Written from training.json alone,
so a card can be rewritten without retraining.

Imports: the standard library only (and specviz.train.common for the curve's verdict).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from specviz.train.common import curve_verdict

__all__ = ["add_decoding", "write_card"]


def _reads(s: dict[str, Any]) -> str:
    """What the head reads, in the card's words."""
    layers = s.get("layers") or []
    if not layers:
        return (
            "the target's **last hidden state** (after its final norm: the vector the target's\n"
            "output layer turns into p)"
        )
    return (
        f"the target's **hidden states entering layers {', '.join(map(str, layers))}** (EAGLE-3's low, middle and high)"
    )


def _layers_lines(s: dict[str, Any]) -> str:
    """Which layers, and why."""
    layers = s.get("layers") or []
    if not layers:
        return (
            "- Only the last layer's feature (EAGLE-1), not EAGLE-3's fusion of low, mid and high layers with direct\n"
            "  token prediction: EAGLE-3 drops the feature loss because it scales to far more data than a 2-core CPU\n"
            "  generates in an hour; with 10^5–10^6 answer tokens the feature loss is a useful extra signal, and the\n"
            "  predicted feature is what the next draft reads. `meta.draft.layers` in a trace records [-1].\n"
            "  `--feature-layers eagle3` trains the fused kind (docs/BENCHMARKS.md compares the two)."
        )
    return (
        f"- EAGLE-3's fusion (arXiv 2503.01840): the hidden states entering layers {', '.join(map(str, layers))} are\n"
        f"  concatenated and fused by one linear layer ({len(layers)} x 576 -> 576) before the pair is formed; later drafts\n"
        "  of a step read the head's own predicted feature instead. The feature loss is kept (the predicted feature\n"
        f"  still feeds the target's output layer). `meta.draft.layers` in a trace records {list(layers)}."
    )


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
head also reads {_reads(s)} at every position the target has verified. It loads next to the
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
{_layers_lines(s)}
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
