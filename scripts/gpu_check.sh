#!/usr/bin/env bash
# The GPU checks, for a session lent a device machine (run it there once, in under 8 minutes):
#   exactness in both numerics on cuda, bench chain + tree on cuda, one recorded sample trace.
# Writes everything under ${OUT:-gpu-check}/; prints a summary to paste into docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
make setup >/dev/null
PY=.venv/bin/python
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
# 1. the numerics contract on cuda: exact (fp32) must be identical; fast (bf16) identical or near-tie only
timeout 180 $PY - <<'PY' | tee "$OUT/contract.txt"
from specviz.drafters.pair import load_pair
from specviz.core.decoder import DecodeConfig, target_decode
from specviz.run.record import Recording, make_drafter
from specviz.core.rules import make_rule
from specviz.core.tree import TreeShape
from specviz.trace import first_parting
from specviz.core.warp import Sampling
prompts = open("assets/prompts/eval.txt").read().splitlines()[:6]
for dtype in ("float32", "bfloat16"):
    target, draft = load_pair("default", "standalone", "cuda", dtype)
    for tree in ("chain", "dynamic:8:8:4"):
        counts = {}
        for p in prompts:
            ids = target.encode(p)
            cfg = DecodeConfig(gamma=4, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=64,
                               tree=TreeShape() if tree == "chain" else TreeShape.parse(tree))
            trace = Recording(target, make_drafter(target, draft), "", cfg, prompt_ids=ids).run()
            v = first_parting(trace, list(target_decode(target, ids, Sampling(0), 64)))
            counts[v.verdict] = counts.get(v.verdict, 0) + 1
        print(dtype, tree, target.meta()["rows"], counts)
PY
# 2. bench chain + auto tree on cuda, greedy, in the machine's dtype (auto races its predicted tree against the
#    chain and keeps the chain unless the tree was >= 3% faster: then both arms are chains, and the printed race
#    line, meta.tree.auto.race in the JSON, holds the tree's measured speed)
timeout 240 $PY -m specviz bench --device cuda --limit 6 --reps 2 --max-new-tokens 128 --tree auto \
  --compare-tree chain --json-out "$OUT/bench-cuda.json" 2>&1 | grep -v "Loading\|Convert" | tail -14
# 3. one recorded sample trace on cuda
timeout 60 $PY -m specviz record --device cuda --prompt "Explain glaciers to a ten-year-old." \
  --max-new-tokens 64 -o "$OUT/cuda-sample.json"
$PY -m specviz validate "$OUT/cuda-sample.json"
