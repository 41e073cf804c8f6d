"""Where a one-token pass of the embedded evaluation model spends its time, float32 against bfloat16.

    .venv/bin/python scripts/pass_profile.py [--passes 20] [--rows 18]

torch's profiler over N one-token passes after a fixed prompt (each rolled back), per numerics as
`load_model` loads it (bf16: prepacked where oneDNN offers it); prints the ops by self CPU time. Run it
on a quiet machine: the table is what decides whether a dtype wins on one row (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from specviz.models.lm import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--passes", type=int, default=20)
    ap.add_argument("--rows", type=int, default=18, help="ops shown per table")
    ap.add_argument("--prompt", default="Explain how a refrigerator keeps food cold.")
    args = ap.parse_args()
    for dtype in ("float32", "bfloat16"):
        lm = load_model("default", "cpu", dtype)
        ids = lm.encode(args.prompt)
        cache = lm.new_cache()
        lm.forward(cache, ids, last=1)
        base = lm.cache_length(cache)
        with torch.inference_mode():
            for _ in range(5):  # warm-up
                lm.forward(cache, ids[-1:])
                lm.rollback(cache, base)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(args.passes):
                    lm.forward(cache, ids[-1:])
                    lm.rollback(cache, base)
        total_ms = sum(e.self_cpu_time_total for e in prof.key_averages()) / 1e3
        print(f"===== {dtype} ({lm.meta().get('weights', 'as loaded')}): {total_ms / args.passes:.1f} ms a pass")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows, max_name_column_width=40))


if __name__ == "__main__":
    main()
