"""`python -m specviz bench`: target-only vs specviz vs Hugging Face assisted generation.

With a feature draft (`--draft feature`, the default for the embedded target), Hugging Face's
assisted generation, which needs a separate draft model, runs the embedded standalone draft.

By default all three run greedy on the same prompts, interleaved (the order rotates every
prompt), for several repetitions after a warm-up; tokens/s is total new tokens over total
seconds per repetition, reported as the median and the spread over repetitions. specviz runs
with its full per-step logging. A second specviz pass samples at temperature 0.7 for tokens per
step.

Given the Live page's settings instead (`--prompt`, `--rule`, `--temperature`, `--top-k`,
`--top-p`, `--seed`, `--no-chat`: what `record` takes), specviz decodes with exactly those, and
the target-only baseline is what the Live page runs beside it: specviz's own target-alone loop
with the same warping and seed (Hugging Face's sampler draws differently, and assisted
generation has no lossy rules, so it runs only when everything is greedy).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from specviz.core.decoder import GammaPolicy, build_config, target_decode
from specviz.core.drafting import Drafter
from specviz.drafters.factory import make_drafter
from specviz.drafters.feature import FeatureModel
from specviz.drafters.pair import load_pair
from specviz.models.llamacpp import load_llamacpp
from specviz.models.lm import CausalLM, load_model
from specviz.models.numerics import cpu_model, cpu_name
from specviz.models.presets import DEFAULT, PRESET_NAMES, REPO_ROOT, ModelLoadError, resolve_preset
from specviz.run.bench_report import print_table
from specviz.run.options import (
    add_decoding_arguments,
    add_lookup_argument,
    add_policy_arguments,
    add_tree_argument,
    decode_config,
    probability,
    tree_shape,
)
from specviz.run.record import Recording
from specviz.run.treesize import resolve_tree
from specviz.trace import library_versions, summarize
from specviz.trace.parting import IDENTICAL, NEAR_TIE, NOT_RECORDED, PARTED, first_parting

__all__ = ["add_arguments", "hf_compatible_draft", "run"]

PEER = "llama.cpp (alone)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="default")
    p.add_argument("--draft", default="default")
    p.add_argument("--preset", help="a named pair instead of --target/--draft: " + ", ".join(PRESET_NAMES))
    p.add_argument("--prompt-file", type=Path, default=REPO_ROOT / "assets" / "prompts" / "eval.txt")
    p.add_argument("--prompt", help="one prompt instead of --prompt-file (e.g. the Live page's)")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    p.add_argument("--gamma", type=int, default=4)

    add_policy_arguments(p)
    add_tree_argument(p)
    p.add_argument(
        "--compare-tree",
        type=tree_shape,
        help="a second tree shape (e.g. chain) run by specviz in the same interleaved run, for a like-for-like ratio",
    )
    add_decoding_arguments(p, rule="greedy", temperature=0.0)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--reps", type=int, default=3, help="timed repetitions (after one warm-up prompt)")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument(
        "--weights",
        default="full",
        choices=["full", "int8", "int4"],
        help="the evaluation model's weights: full, or torch's weight-only int8/int4 (CPU, bf16 activations)",
    )
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument(
        "--compare-draft", help="also time specviz with this draft in the same interleaved run (e.g. standalone)"
    )
    add_lookup_argument(p)
    p.add_argument(
        "--compare-lookup",
        type=probability,
        help="also time specviz with this --lookup-below in the same interleaved run (0: the draft model alone)",
    )
    p.add_argument(
        "--compare-confidence",
        type=probability,
        help="also time specviz with this --confidence in the same interleaved run (0: no early stop)",
    )
    p.add_argument(
        "--peer",
        choices=["llama.cpp"],
        help="also time llama.cpp's evaluation model alone on the embedded GGUF, same threads (`make peer` installs it)",
    )


def hf_compatible_draft(draft: CausalLM, vocab_size: int) -> torch.nn.Module:
    """Hugging Face's assisted generation needs a draft over the full vocabulary: expand a
    reduced-vocabulary draft (token_map) to it, with a -1e4 bias on tokens the draft cannot emit."""
    model = draft.model
    tmap = draft.token_map
    if tmap is None:
        return model
    from transformers import AutoModelForCausalLM

    cfg = model.config.__class__.from_dict(
        {**model.config.to_dict(), "vocab_size": vocab_size, "tie_word_embeddings": False}
    )
    full = AutoModelForCausalLM.from_config(cfg).to(draft.dtype).to(draft.device).eval()
    full.load_state_dict(
        {k: v for k, v in model.state_dict().items() if "embed_tokens" not in k and "lm_head" not in k}, strict=False
    )
    emb = model.get_input_embeddings().weight.detach()
    lookup = tmap.lookup[:vocab_size].to(emb.device)
    head = torch.nn.Linear(emb.shape[1], vocab_size, bias=True).to(emb.dtype).to(emb.device)
    with torch.no_grad():
        full.get_input_embeddings().weight.copy_(emb[lookup])
        head.weight.copy_(emb[lookup])
        head.bias.copy_(torch.where(lookup == tmap.unk, -1e4, 0.0))
    full.lm_head = head
    return full


def _machine() -> dict[str, Any]:
    cpu = cpu_name()
    out = {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def _timed(fn: Any, device: torch.device) -> tuple[float, Any]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, result


def run(args: argparse.Namespace) -> int:
    if args.weights != "full" and args.dtype == "auto":
        args.dtype = "bfloat16"  # low-bit weights compute in bf16: every model of the run does
    try:
        if args.preset:
            args.target, args.draft = resolve_preset(args.preset)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    peer = None
    if args.peer:
        if args.target != DEFAULT:
            print(
                "error: --peer llama.cpp runs the embedded evaluation model's GGUF: use it with the default target",
                file=sys.stderr,
            )
            return 2
        try:
            peer = load_llamacpp()
        except ModelLoadError as exc:
            print(f"error: --peer: {exc}", file=sys.stderr)
            return 2
    try:
        target, draft = load_pair(args.target, args.draft, args.device, args.dtype, args.weights)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.prompt is not None:
        prompts = [args.prompt]
    else:
        prompts = [p for p in args.prompt_file.read_text(encoding="utf-8").splitlines() if p.strip()][: args.limit]
    encoded = [target.encode(p, args.chat) for p in prompts]
    policy = GammaPolicy.from_options(args.gamma, args.adaptive, args.confidence)
    try:
        cfg = decode_config(args)  # the configuration asked for: greedy unless the page's settings were given
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731

    def new_drafter(d: Any = draft, below: float = args.lookup_below) -> Drafter:
        """A fresh drafter for one run (a drafter keeps state between steps): the run's, unless told."""
        return make_drafter(target, d, below)

    base_cfg = cfg
    cfg, tree_meta = resolve_tree(base_cfg, args.tree, target, new_drafter(), say)
    other_cfg = None
    if args.compare_tree is not None:
        other_cfg, other_tree_meta = resolve_tree(base_cfg, args.compare_tree, target, new_drafter(), say)
        tree_meta = tree_meta or other_tree_meta
    all_greedy = args.rule == "greedy" and cfg.sampling.greedy
    # HF's assisted generation runs a separate draft model: for a feature head, the embedded standalone draft
    hf_model = draft
    if isinstance(draft, FeatureModel):
        hf_model = (
            load_model(DEFAULT, args.device, args.dtype, role="draft", tokenizer=target.tokenizer)
            if args.target == DEFAULT
            else None
        )
    hf_draft = (
        hf_compatible_draft(hf_model, target.vocab_size) if isinstance(hf_model, CausalLM) and all_greedy else None
    )
    if hf_draft is not None:
        gc = hf_draft.generation_config
        gc.num_assistant_tokens, gc.num_assistant_tokens_schedule, gc.assistant_confidence_threshold = (
            args.gamma,
            "constant",
            0.0,
        )

    alone: dict[tuple[int, ...], list[int]] = {}  # the alone run's output per prompt, for the numerics contract

    def target_only(ids: list[int]) -> list[int]:
        # specviz's own loop for the Live page's settings, and in fast numerics, where it computes each
        # position as verification does (HF generate prefills in one fused pass, which rounds otherwise)
        if not all_greedy or target.rows:
            out = list(target_decode(target, ids, cfg.sampling, cfg.max_new_tokens, cfg.seed))
            alone[tuple(ids)] = out
            return out
        x = torch.tensor([ids], device=target.device)
        out = target.model.generate(
            x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=args.max_new_tokens
        )
        alone[tuple(ids)] = out[0, len(ids) :].tolist()
        return alone[tuple(ids)]

    def hf_assisted(ids: list[int]) -> list[int]:
        x = torch.tensor([ids], device=target.device)
        out = target.model.generate(
            x,
            attention_mask=torch.ones_like(x),
            do_sample=False,
            max_new_tokens=args.max_new_tokens,
            assistant_model=hf_draft,
        )
        return out[0, len(ids) :].tolist()

    def arm(runs: list[dict], arm_cfg: Any = None, d: Any = draft, below: float = args.lookup_below) -> Any:
        """One specviz method: decode with a fresh drafter, keep its trace in `runs`, return the tokens."""

        def run(ids: list[int]) -> list[int]:
            trace = Recording(target, new_drafter(d, below), "", arm_cfg or cfg, prompt_ids=ids).run()
            runs.append(trace)
            return trace["output"]["token_ids"]

        return run

    traces: list[dict] = []
    methods = {"target-only": target_only, "specviz": arm(traces)}
    # second specviz methods in the same interleaved run: (its --compare- option, its value, its traces)
    compared: dict[str, tuple[str, Any, list[dict]]] = {}

    def compare(key: str, value: Any, name: str, **kw: Any) -> None:
        compared[name] = (key, value, [])
        methods[name] = arm(compared[name][2], **kw)

    if args.compare_draft:  # a second draft in the same interleaved run, e.g. the feature head against the standalone
        try:
            other = load_pair(args.target, args.compare_draft, args.device, args.dtype, args.weights)[1]
        except ModelLoadError as exc:
            print(f"error: --compare-draft: {exc}", file=sys.stderr)
            return 2
        compare("draft", args.compare_draft, f"specviz ({args.compare_draft})", d=other)
    if args.compare_lookup is not None:
        compare("lookup", args.compare_lookup, f"specviz (lookup {args.compare_lookup})", below=args.compare_lookup)
    if args.compare_confidence is not None:
        policy_b = GammaPolicy.from_options(args.gamma, args.adaptive, args.compare_confidence)
        arm_cfg = dataclasses.replace(cfg, gamma_policy=policy_b)
        compare(
            "confidence", args.compare_confidence, f"specviz (confidence {args.compare_confidence})", arm_cfg=arm_cfg
        )
    if other_cfg is not None:
        compare("tree", other_cfg.tree.text, f"specviz (tree {other_cfg.tree.text})", arm_cfg=other_cfg)
    if hf_draft is not None:
        methods["hf-assisted"] = hf_assisted
    if peer is not None:
        methods[PEER] = lambda ids: peer.greedy(ids, args.max_new_tokens)
    with torch.inference_mode():
        for fn in methods.values():  # warm-up: first calls pay for allocation and kernel choice
            fn(encoded[0][:32])
        traces.clear()
        per_rep: dict[str, list[float]] = {m: [] for m in methods}
        agree = total = peer_same = 0
        for rep in range(args.reps):
            secs = dict.fromkeys(methods, 0.0)
            toks = dict.fromkeys(methods, 0)
            for i, ids in enumerate(encoded):
                names = list(methods)
                shift = (rep + i) % len(names)
                outs = {}
                for name in names[shift:] + names[:shift]:
                    t, out = _timed(lambda fn=methods[name], ids=ids: fn(ids), target.device)
                    secs[name] += t
                    toks[name] += len(out)
                    outs[name] = out
                total += 1
                # in fast numerics HF's assisted generation prefills in one fused pass, which rounds otherwise:
                # its tokens are compared by the contract's rules, not here; llama.cpp computes in its own
                # 4-bit arithmetic (a speed peer): its agreement is counted apart
                agree += (
                    len({tuple(o) for n, o in outs.items() if not (target.rows and n == "hf-assisted") and n != PEER})
                    == 1
                )
                if PEER in outs:
                    peer_same += outs[PEER] == outs["target-only"]
            for name in methods:
                per_rep[name].append(toks[name] / secs[name])
            print(
                f"rep {rep + 1}/{args.reps}: " + ", ".join(f"{n} {per_rep[n][-1]:.1f} tok/s" for n in methods),
                file=sys.stderr,
            )
        run_stats = _pooled(traces[-len(encoded) :])
        sampled = []
        for seed, ids in enumerate(encoded if all_greedy else []):
            sampled_cfg = build_config(
                gamma=args.gamma,
                rule="sampling",
                temperature=0.7,
                max_new_tokens=args.max_new_tokens,
                seed=seed,
                adaptive=args.adaptive,
                confidence=args.confidence,
                tree=cfg.tree,
            )
            sampled.append(Recording(target, new_drafter(), "", sampled_cfg, prompt_ids=ids).run())
        sample_stats = _pooled(sampled) if sampled else None

    med = {n: statistics.median(v) for n, v in per_rep.items()}
    tree_arm = next((n for n, (key, _, _) in compared.items() if key == "tree"), None)
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "machine": _machine(),
        "versions": library_versions(),
        "target": target.name,
        "draft": draft.name if draft is not None else "ngram",
        "device": str(target.device),
        "dtype": str(target.dtype).removeprefix("torch."),
        "weights": target.weights,
        "prompts": len(encoded),
        "gamma": args.gamma,
        "gamma_policy": None if policy is None else policy.meta(args.gamma),
        "settings": {
            "prompt": args.prompt,
            "chat": args.chat,
            "rule": cfg.rule.name,
            "params": dict(cfg.rule.params),
            "temperature": args.temperature,
            "top_k": args.top_k,
            "top_p": args.top_p,
            "seed": args.seed,
            "baseline": "hf generate (greedy)"
            if all_greedy and not target.rows
            else "specviz target_decode (same warping and seed)",
        },
        "max_new_tokens": args.max_new_tokens,
        "reps": args.reps,
        "tokens_per_s": {n: {"median": med[n], "min": min(v), "max": max(v)} for n, v in per_rep.items()},
        "speedup_vs_target": med["specviz"] / med["target-only"],
        "hf_assisted_ratio": med["specviz"] / med["hf-assisted"] if "hf-assisted" in med else None,
        "hf_assisted_draft": hf_model.name if hf_draft is not None and hf_model is not None else None,
        "tokens_per_step": run_stats["tokens_per_step"],
        "acceptance_rate": run_stats["acceptance_rate"],
        "alpha": run_stats["alpha"],
        "sampling_t0.7": sample_stats,
        "identical_greedy_outputs": f"{agree}/{total}" if all_greedy else None,
        "peer": None
        if peer is None
        else {
            "name": peer.name,
            "ratio_to_target": med[PEER] / med["target-only"],
            "speculative_vs_peer": med["specviz"] / med[PEER],
            "same_tokens_as_target": f"{peer_same}/{total}",
        },
        "numerics": target.meta(),
        "contract": _contract(
            traces[-len(encoded) :] + (compared[tree_arm][2][-len(encoded) :] if tree_arm else []), alone
        )
        if all_greedy
        else None,
        "tree": cfg.tree.text,
        "tree_sizing": tree_meta.get("tree", {}).get("auto"),
        "lookup_below": args.lookup_below,
        # each --compare-X: {X: its value, speedup_vs_target, and its pooled acceptance figures}
        **{f"compare_{key}": None for key in ("draft", "lookup", "confidence", "tree")},
        **{
            f"compare_{key}": {
                key: value,
                "speedup_vs_target": med[name] / med["target-only"],
                **_pooled(runs[-len(encoded) :]),
            }
            for name, (key, value, runs) in compared.items()
        },
    }
    print_table(result)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json_out}", file=sys.stderr)
    return 0


def _contract(traces: list[dict], alone: dict[tuple[int, ...], list[int]]) -> dict[str, Any]:
    """The numerics contract over greedy traces: how many are identical to the evaluation model alone,
    parted at a near-tie the trace proves, or parted otherwise (must be 0), with each parting's details."""
    counts = {IDENTICAL: 0, NEAR_TIE: 0, PARTED: 0, NOT_RECORDED: 0}
    partings = []
    for trace in traces:
        mine = alone.get(tuple(trace["prompt"]["token_ids"]))
        if mine is None:
            continue
        verdict = first_parting(trace, mine)
        counts[verdict.verdict] += 1
        if verdict.verdict != IDENTICAL:
            partings.append(verdict.as_dict())
    return {**counts, "partings": partings}


def _pooled(traces: list[dict]) -> dict[str, float]:
    """Acceptance figures pooled over traces (token-weighted, not a mean of per-trace ratios)."""
    sums = [summarize(t) for t in traces]
    steps = sum(s["steps"] for s in sums)
    drafted = sum(s["drafted"] for s in sums)
    accepted = sum(s["accepted"] for s in sums)
    rejections = sum(s["rejections"] for s in sums)
    return {
        "tokens_per_step": sum(s["tokens"] for s in sums) / steps,
        "acceptance_rate": accepted / drafted if drafted else None,  # undefined without drafts, not 0
        "alpha": accepted / (accepted + rejections) if accepted + rejections else None,
        "draft_ms_per_step": sum(s["draft_ms"] for s in sums) / steps,
        "verify_ms_per_step": sum(s["verify_ms"] for s in sums) / steps,
    }
