"""How much one verification pass costs for 1..N positions, on the default target (or any).

    .venv/bin/python scripts/verify_cost.py [--target default] [--positions 1,2,3,4,5,6,8] [--reps 15]

The speedup formula assumes a pass over gamma + 1 positions costs about as much as one over a
single position. On a CPU that is not always so, and not even monotonic: the matrix-multiply
kernel chosen for 2-3 rows can be slower than the one for 5. Prints the median milliseconds of a
forward pass over k new positions after a fixed prompt, and the ratio to k = 1; then the output
layer's matrix multiply alone for k rows.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from specviz.models.lm import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="default")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--positions", default="1,2,3,4,5,6,8")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--prompt", default="Explain how a refrigerator keeps food cold.")
    args = ap.parse_args()
    target = load_model(args.target, args.device)
    ids = target.encode(args.prompt)
    cache = target.new_cache()
    target.forward(cache, ids, last=1)
    base = target.cache_length(cache)
    print(f"{target.name} on {target.device}, {torch.get_num_threads()} threads, context {base} tokens")
    first = None
    for k in (int(x) for x in args.positions.split(",")):
        times = []
        for _ in range(args.reps + 2):  # two warm-up passes: kernel choice and allocation
            target.sync()
            t0 = time.perf_counter()
            target.forward(cache, ids[:k] if len(ids) >= k else [ids[0]] * k, last=k)
            target.sync()
            times.append(time.perf_counter() - t0)
            target.rollback(cache, base)
        ms = statistics.median(times[2:]) * 1e3
        first = first or ms
        print(f"{k} positions: {ms:6.1f} ms  ({ms / first:.2f}x one position)")
    # the output layer alone, single-threaded: where the non-monotonic cost comes from
    head = target.model.get_output_embeddings().weight.detach()
    torch.set_num_threads(1)
    row = []
    for k in (int(x) for x in args.positions.split(",")):
        x = torch.randn(k, head.shape[1], dtype=head.dtype, device=head.device)
        times = []
        for _ in range(args.reps + 2):
            t0 = time.perf_counter()
            torch.nn.functional.linear(x, head)
            times.append(time.perf_counter() - t0)
        row.append(f"{k}: {statistics.median(times[2:]) * 1e3:.1f}")
    print(f"output layer {tuple(head.shape)} alone, 1 thread, ms by rows: " + ", ".join(row))


if __name__ == "__main__":
    main()
