"""One evaluation-model pass over k new positions, in each numerics, timed in turns on one machine.

    .venv/bin/python scripts/pass_cost.py [--positions 1,2,5,9,17,33] [--reps 15] [--json-out FILE]
        [--llamacpp] [--lowbit]

Three set-ups of the embedded target in one process (plus float32 with torch's own output layer where
load_model prepacked it, models.prepack.pack_output; plus llama.cpp with `--llamacpp`: llama.cpp on the same GGUF,
computing with its 4-bit blocks, a logits row kept per position as verification needs): float32 (exact), bfloat16 with transformers'
fused attention (fast, may part at near-ties), and bfloat16 computing each row as a one-token pass
(fast and identical: what `--dtype auto` loads on a CPU with bf16 units); with `--lowbit`, that
last set-up again with torch's weight-only int8 and int4 linears (measured, not adopted). For each k, the median
milliseconds of a pass over k new positions after a fixed prompt (then rolled back), the set-ups
taking turns so a busy moment slows all alike. The ratio pass(k) / pass(1) is what decides whether
verification is nearly free (the textbook's assumption).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from specviz.models import lowbit
from specviz.models.llamacpp import load_llamacpp
from specviz.models.lm import load_model
from specviz.models.numerics import cpu_model, cpu_name
from specviz.models.prepack import unpacked

LLAMACPP = "llama.cpp Q4_1 4-bit"
UNPACKED = "float32, torch's own output layer"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--positions", default="1,2,5,9,17,33")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--prompt", default="Explain how a refrigerator keeps food cold.")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument(
        "--lowbit",
        action="store_true",
        help="also torch's weight-only int8 and int4 linears (bf16 activations, one-token rows; specviz.models.lowbit)",
    )
    ap.add_argument(
        "--llamacpp",
        action="store_true",
        help="also llama.cpp on the same GGUF, its 4-bit blocks as stored, a logits row per position (`make peer`)",
    )
    args = ap.parse_args()
    ks = [int(k) for k in args.positions.split(",")]
    held = contextlib.ExitStack()  # set-ups held as measured for the whole run
    fused = load_model("default", "cpu", "bfloat16")
    fused.rows = None
    fused.model.set_attn_implementation("sdpa")
    fp32 = load_model("default", "cpu", "float32")
    setups = {"float32": fp32}
    if fp32.output_pack and fp32.output_pack["packed"]:  # what float32 cost before (models.prepack.pack_output)
        plain = load_model("default", "cpu", "float32")
        held.enter_context(unpacked(plain.model))
        setups[UNPACKED] = plain
    setups["bfloat16 fused"] = fused
    setups["bfloat16 one-token rows"] = load_model("default", "cpu", "bfloat16")
    if args.lowbit:
        for bits in (8, 4):
            if lowbit.available(bits):
                lm = load_model("default", "cpu", "bfloat16")
                lowbit.quantize_weights(lm.model, bits)
                setups[f"torch int{bits} weight-only"] = lm
    ids = fused.encode(args.prompt)
    caches = {}
    for name, lm in setups.items():
        caches[name] = lm.new_cache()
        lm.forward(caches[name], ids, last=1)
    base = len(ids)
    if args.llamacpp:  # verification needs p at every position: llama.cpp keeps a logits row for each
        peer = load_llamacpp(logits_all=True)
        peer.prefill(ids)
        setups[LLAMACPP] = peer
    ms: dict[str, dict[int, list[float]]] = {n: {k: [] for k in ks} for n in setups}
    new = ids[-1:] * max(ks)
    for _ in range(args.reps):
        for k in ks:
            for name, lm in setups.items():
                if name == LLAMACPP:
                    t0 = time.perf_counter()
                    lm.pass_over(base, new[:k])
                    ms[name][k].append((time.perf_counter() - t0) * 1e3)
                    continue
                t0 = time.perf_counter()
                lm.forward(caches[name], new[:k])
                ms[name][k].append((time.perf_counter() - t0) * 1e3)
                lm.rollback(caches[name], base)
    table = {n: {k: statistics.median(v) for k, v in per.items()} for n, per in ms.items()}
    print(f"context {base} tokens, {torch.get_num_threads()} threads; median ms of a pass over k positions")
    print(f"{'k':>4} " + "".join(f"{n:>26}" for n in setups))
    for k in ks:
        print(f"{k:>4} " + "".join(f"{table[n][k]:>18.1f} ({table[n][k] / table[n][1]:.2f}x)" for n in setups))
    if args.json_out:
        machine = f"{cpu_name()} ({cpu_model()}), {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d')}"
        args.json_out.write_text(json.dumps({"context": base, "machine": machine, "ms": table}, indent=1) + "\n")


if __name__ == "__main__":
    main()
