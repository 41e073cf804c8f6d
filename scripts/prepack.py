"""bf16 with prepacked weights (issue 20): does oneDNN's prepacked linear make bf16 win on one row?

    .venv/bin/python scripts/prepack.py [--json-out FILE]

torch's bf16 linear on a CPU reorders its weight on every call; oneDNN can reorder it once
(`torch.ops.mkldnn._reorder_linear_weight`) and reuse it (`_linear_pointwise`). Two measurements,
in one process each, set-ups taking turns:
1. layer level: a 576→1536, 1536→576 and 576→49152 (the output layer) matmul at 1 and 9 rows, fp32
   against bf16 against prepacked bf16 (µs, median of 300), and whether prepacked equals bf16 bit for bit;
2. end to end: the embedded pair (greedy, γ 4, 64 tokens, 3 eval prompts after a warm-up), tok/s of the
   evaluation model alone, the chain and the dynamic:8:8:4 tree, in fp32, bf16 and bf16 prepacked.
An experiment, not a feature: the numbers say whether prepacking belongs in the model layer.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from specviz.models.prepack import PackedLinear, prepack, unpacked

SHAPES = ((576, 1536), (1536, 576), (576, 49152))


def _us(f, x: torch.Tensor, n: int = 300) -> float:
    for _ in range(20):
        f(x)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def layers() -> dict[str, dict[str, float | bool]]:
    out: dict[str, dict[str, float | bool]] = {}
    with torch.inference_mode():
        for i, o in SHAPES:
            lin = nn.Linear(i, o, bias=False).eval()
            lb = nn.Linear(i, o, bias=False).to(torch.bfloat16).eval()
            packed = PackedLinear(lb)
            row: dict[str, float | bool] = {}
            for rows in (1, 9):
                x = torch.randn(rows, i)
                xb = x.to(torch.bfloat16)
                row[f"fp32_{rows}"] = _us(lin, x)
                row[f"bf16_{rows}"] = _us(lb, xb)
                row[f"packed_{rows}"] = _us(packed, xb)
                row[f"packed_equals_bf16_{rows}"] = bool(torch.equal(packed(xb), lb(xb)))
            out[f"{i}x{o}"] = {k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items()}
    return out


def end_to_end(mode: str) -> dict[str, float]:
    from specviz.core.decoder import DecodeConfig, target_decode
    from specviz.core.rules import make_rule
    from specviz.core.tree import TreeShape
    from specviz.core.warp import Sampling
    from specviz.drafters.factory import make_drafter
    from specviz.drafters.pair import load_pair
    from specviz.run.record import Recording

    target, draft = load_pair("default", "default", "cpu", "float32" if mode == "fp32" else "bfloat16")
    # load_model prepacks bf16 where it pays (models.prepack): plain linears for the other set-ups
    held = contextlib.ExitStack()  # held for the whole run: this process measures one set-up
    for lm in (target, draft):
        if mode == "bf16-packed":
            prepack(lm.model)
        else:
            held.enter_context(unpacked(lm.model))
    root = Path(__file__).resolve().parent.parent
    prompts = [ln for ln in (root / "assets" / "prompts" / "eval.txt").read_text().splitlines() if ln.strip()][:3]
    res: dict[str, float] = {}
    for label, shape in (("chain", "chain"), ("tree", "dynamic:8:8:4")):
        cfg = DecodeConfig(
            gamma=4, rule=make_rule("greedy"), sampling=Sampling(0.0), max_new_tokens=64, tree=TreeShape.parse(shape)
        )
        Recording(target, make_drafter(target, draft), prompts[0], cfg).run()  # warm-up
        toks, wall = 0, 0.0
        for pr in prompts:
            rec = Recording(target, make_drafter(target, draft), pr, cfg)
            t = time.perf_counter()
            tr = rec.run()
            wall += time.perf_counter() - t
            toks += len(tr["output"]["token_ids"])
        res[label] = round(toks / wall, 2)
    toks, wall = 0, 0.0
    for pr in prompts:
        t = time.perf_counter()
        toks += len(list(target_decode(target, target.encode(pr, None), Sampling(0.0), 64)))
        wall += time.perf_counter() - t
    res["alone"] = round(toks / wall, 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--one", choices=("fp32", "bf16", "bf16-packed"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.one:  # a child process: one set-up, its numbers as JSON on stdout
        print(json.dumps(end_to_end(args.one)))
        return
    result: dict[str, object] = {"layers_us": layers(), "end_to_end_tok_s": {}}
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in ("fp32", "bf16", "bf16-packed")}
    for _ in range(args.rounds):  # set-ups in turns, a fresh process each
        for mode in runs:
            out = subprocess.run(
                [sys.executable, __file__, "--one", mode], capture_output=True, text=True, check=True
            ).stdout
            runs[mode].append(json.loads(out.strip().splitlines()[-1]))
            print(mode, runs[mode][-1], flush=True)
    result["end_to_end_tok_s"] = runs
    print(json.dumps(result["layers_us"], indent=1))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
