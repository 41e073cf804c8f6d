"""Measure the browser exports (issue 23): export time, file sizes, agreement with the torch fp32 models,
logit differences, and (with Node and js/node_modules) the pass time in onnxruntime-web's wasm build.

    PYTHONPATH=. .venv/bin/python scripts/onnx_export.py [--out docs/results/onnx-export.json]

Variants: specviz's own (fp32, int8, q4: specviz.export.quantize) and, for comparison, onnxruntime's
quantizers as they come (quantize_dynamic int8; MatMulNBitsQuantizer 4-bit, blocks of 32). Agreement:
4 prompts of assets/prompts/eval.txt in the chat template, 32 greedy tokens each; the draft decodes
over its own vocabulary. Takes ~6 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from specviz.export.onnxgraph import export_onnx, shape_of
from specviz.export.ortref import OrtLM
from specviz.export.quantize import QUANTS, quantize
from specviz.models.lm import load_model
from specviz.models.presets import DEFAULT, REPO_ROOT

PROMPTS, TOKENS = 4, 32


def torch_greedy(lm, ids: list[int], n: int, banned: int | None) -> tuple[list[int], list[float]]:
    """Greedy tokens and, at each, the gap between the two best logits (nats)."""
    cache, logits = lm.new_cache(), None
    out, gaps = [], []
    logits = lm.forward(cache, ids)
    for _ in range(n):
        row = logits[-1].clone()
        if banned is not None:
            row[banned] = -torch.inf
        top = row.topk(2)
        out.append(int(top.indices[0]))
        gaps.append(float(top.values[0] - top.values[1]))
        logits = lm.forward(cache, [out[-1]])
    return out, gaps


def ort_greedy(model: OrtLM, ids: list[int], n: int, banned: int | None) -> list[int]:
    out = []
    logits, cache = model.forward(ids, model.empty_cache())
    for _ in range(n):
        row = logits[-1].copy()
        if banned is not None:
            row[banned] = -np.inf
        out.append(int(np.argmax(row)))
        logits, cache = model.forward([out[-1]], cache)
    return out


def agreement(model: OrtLM, refs: list[tuple[list[int], list[int], list[float]]], banned: int | None) -> dict:
    prefixes, aligned, gaps = [], 0, []
    t = time.perf_counter()
    for ids, ref, ref_gaps in refs:
        got = ort_greedy(model, ids, TOKENS, banned)
        k = next((i for i, (a, b) in enumerate(zip(got, ref, strict=True)) if a != b), TOKENS)
        prefixes.append(k)
        aligned += sum(a == b for a, b in zip(got, ref, strict=True))
        if k < TOKENS:
            gaps.append(round(ref_gaps[k], 4))
    seconds = time.perf_counter() - t
    return {
        "identical_prefix": prefixes,  # tokens identical before the first parting, per prompt
        "share_before_parting": round(sum(prefixes) / (TOKENS * len(refs)), 4),
        "share_identical_aligned": round(aligned / (TOKENS * len(refs)), 4),
        "torch_gap_at_parting_nats": gaps,
        "ort_cpu_tokens_per_s": round(TOKENS * len(refs) / seconds, 1),
    }


def max_logit_diff(lm, model: OrtLM, ids: list[int]) -> float:
    """Prefill 20 tokens, then 3 one-token steps with the cache: the largest |ONNX − torch| logit."""
    cache = lm.new_cache()
    ref = [lm.forward(cache, ids[:20])]
    got, present = model.forward(ids[:20], model.empty_cache())
    diffs = [np.abs(got - ref[0].numpy()).max()]
    for t in ids[20:23]:
        r = lm.forward(cache, [t])
        g, present = model.forward([t], present)
        diffs.append(np.abs(g - r.numpy()).max())
    return float(max(diffs))


def ort_tools(src: Path, dst: Path, kind: str) -> None:
    """onnxruntime's own quantizers, as they come."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    if kind == "ort-dynamic-int8":
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8, per_channel=True)
        return
    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=False, quant_format=QuantFormat.QOperator)
    q = MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config)
    q.process()
    onnx.save(q.model.model, str(dst))


def wasm_pass(path: Path, ids: list[int], kv: int, hd: int) -> dict | None:
    script = REPO_ROOT / "scripts" / "ort_web_pass.mjs"
    if not shutil.which("node") or not (REPO_ROOT / "js" / "node_modules" / "onnxruntime-web").is_dir():
        return None
    spec = json.dumps({"ids": ids, "kv": kv, "hd": hd, "n": 5})
    out = subprocess.run(["node", str(script), str(path), spec], capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {"error": out.stderr[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "results" / "onnx-export.json")
    ap.add_argument("--no-wasm", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    target = load_model(DEFAULT, "cpu", "float32")
    draft = load_model(DEFAULT, "cpu", "float32", role="draft", tokenizer=target.tokenizer)
    prompts = (REPO_ROOT / "assets" / "prompts" / "eval.txt").read_text().splitlines()[:PROMPTS]
    result: dict = {
        "what": "ONNX exports of the embedded pair for the browser (issue 23): sizes, agreement, speed",
        "date": dt.date.today().isoformat(),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],  # timings are slower on a busy box
        },
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "agreement": f"{PROMPTS} prompts of assets/prompts/eval.txt, chat template, {TOKENS} greedy tokens each, "
        "against the torch float32 model",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for role, lm in (("target", target), ("draft", draft)):
            banned = lm.token_map.unk if lm.token_map is not None else None
            prompt_ids = [target.encode(p) for p in prompts]
            if lm.token_map is not None:
                prompt_ids = [lm.token_map.to_draft(ids) for ids in prompt_ids]
            refs = [(ids, *torch_greedy(lm, ids, TOKENS, banned)) for ids in prompt_ids]
            fp32 = Path(tmp) / f"{role}.fp32.onnx"
            t = time.perf_counter()
            export_onnx(lm, fp32)
            entry: dict = {"export_s": round(time.perf_counter() - t, 1), "variants": {}}
            print(role, "exported in", entry["export_s"], "s", flush=True)
            kinds = list(QUANTS) + (["ort-dynamic-int8", "ort-matmulnbits-q4"] if role == "target" else [])
            for kind in kinds:
                path = fp32 if kind == "fp32" else Path(tmp) / f"{role}.{kind}.onnx"
                t = time.perf_counter()
                if kind == "fp32":
                    counts = None
                else:
                    counts = quantize(fp32, path, kind) if kind in QUANTS else ort_tools(fp32, path, kind)
                row = {"quantize_s": round(time.perf_counter() - t, 1), "mb": round(path.stat().st_size / 1e6, 1)}
                if counts:
                    row["weights"] = counts
                model = OrtLM(path)
                row |= agreement(model, refs, banned)
                row["max_abs_logit_diff"] = round(max_logit_diff(lm, model, refs[0][0] + refs[0][1]), 6)
                if role == "target" and not args.no_wasm:
                    _, kv, hd = shape_of(lm)
                    row["wasm_1_thread"] = wasm_pass(path, prompt_ids[0], kv, hd)
                entry["variants"][kind] = row
                print(role, kind, json.dumps(row), flush=True)
                del model
                if kind != "fp32":
                    path.unlink()
            result[role] = entry
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
