"""Command line: `python -m specviz record | validate | summarize | bench`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="default", help="hub id, local directory, .gguf file, or 'default' (embedded)")
    p.add_argument("--draft", default="default", help="hub id, local directory, .gguf file, 'default', or 'ngram'")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", default="auto", help="auto (bf16 on cuda, fp32 elsewhere), float32, bfloat16, float16")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m specviz", description="Record, check and summarise speculative decoding traces."
    )
    sub = ap.add_subparsers(dest="cmd", required=True)

    rec = sub.add_parser("record", help="run speculative decoding and write a trace")
    _add_model_args(rec)
    src = rec.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="the prompt text")
    src.add_argument(
        "--prompt-file", type=Path, help="one prompt per line; OUT is then a directory of 000.json, 001.json, ..."
    )
    rec.add_argument("--gamma", type=int, default=4, help="draft length (tokens proposed per step)")
    rec.add_argument("--rule", default="sampling", choices=["sampling", "greedy", "threshold", "typical"])
    rec.add_argument("--tau", type=float, help="threshold rule: accept iff p/q >= tau (default 0.3)")
    rec.add_argument("--epsilon", type=float, help="typical rule (default 0.09)")
    rec.add_argument("--delta", type=float, help="typical rule (default 0.3)")
    rec.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    rec.add_argument("--top-k", type=int, default=0, help="0 = off")
    rec.add_argument("--top-p", type=float, default=1.0, help="1.0 = off")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--max-new-tokens", type=int, default=64)
    rec.add_argument("--log-top-k", type=int, default=10, help="entries kept in each logged top list")
    chat = rec.add_mutually_exclusive_group()
    chat.add_argument(
        "--chat",
        dest="chat",
        action="store_true",
        default=None,
        help="wrap the prompt in the chat template (default when there is one)",
    )
    chat.add_argument("--no-chat", dest="chat", action="store_false", help="use the prompt as raw text")
    rec.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        help="trace file (.json, .json.gz, .jsonl) or, with --prompt-file, a directory",
    )

    val = sub.add_parser("validate", help="check a trace's schema and semantics (exit 0 valid, 1 invalid)")
    val.add_argument("file", type=Path)
    sm = sub.add_parser("summarize", help="acceptance and timing summary of a trace")
    sm.add_argument("file", type=Path)
    sm.add_argument("--json", action="store_true", help="print JSON instead of a table")

    from specviz.bench import add_arguments

    add_arguments(sub.add_parser("bench", help="measure target-only vs specviz vs HF assisted generation"))
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "validate":
            return _validate(args.file)
        if args.cmd == "summarize":
            return _summarize(args.file, args.json)
        if args.cmd == "record":
            return _record(args)
        from specviz.bench import run as bench

        return bench(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _validate(path: Path) -> int:
    from specviz.trace import TraceError, load, validate

    try:
        problems = validate(load(path))
    except TraceError as exc:
        print(f"invalid: {exc}")
        return 1
    if problems:
        for line in problems:
            print(f"invalid: {line}")
        return 1
    print(f"valid: {path}")
    return 0


def _summarize(path: Path, as_json: bool) -> int:
    from specviz.trace import TraceError, load, summarize, validate

    try:
        trace = load(path)
    except TraceError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    problems = validate(trace)
    if problems:
        print(f"invalid: {problems[0]} (run `validate` for the full list)", file=sys.stderr)
        return 1
    s = summarize(trace)
    if as_json:
        print(json.dumps(s, indent=2))
        return 0
    meta = trace["meta"]
    print(f"{meta['target']['name']} <- {meta['draft']['name']}, gamma {meta['gamma']}, rule {meta['rule']['name']}")
    print(f"steps               {s['steps']}")
    print(f"tokens              {s['tokens']}  ({s['stop_reason']})")
    print(f"tokens per step     {s['tokens_per_step']:.2f}")
    print(f"acceptance rate     {s['acceptance_rate']:.1%} of drafted tokens  (alpha = {s['alpha']:.3f})")
    print(f"mean accepted       {s['mean_accepted']:.2f} of up to {meta['gamma']}")
    print("per position        " + "  ".join("-" if a is None else f"{a:.0%}" for a in s["per_position_acceptance"]))
    print("accepted lengths    " + "  ".join(f"{n}:{c}" for n, c in enumerate(s["accepted_length_counts"])))
    if s["draft_share"] is not None:
        print(
            f"time                draft {s['draft_ms']:.0f} ms ({s['draft_share']:.0%}), verify {s['verify_ms']:.0f} ms"
        )
    return 0


def _record(args: argparse.Namespace) -> int:
    from specviz.decoder import DecodeConfig
    from specviz.models import ModelLoadError, load_pair
    from specviz.record import Recording, make_drafter
    from specviz.rules import make_rule
    from specviz.trace import dump
    from specviz.warp import Sampling

    try:
        cfg = DecodeConfig(
            gamma=args.gamma,
            rule=make_rule(args.rule, tau=args.tau, epsilon=args.epsilon, delta=args.delta),
            sampling=Sampling(args.temperature, args.top_k, args.top_p),
            max_new_tokens=args.max_new_tokens,
            seed=args.seed,
            top_k_log=args.log_top_k,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.prompt_file is not None:
        try:
            prompts = [ln for ln in args.prompt_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read {args.prompt_file}: {exc}", file=sys.stderr)
            return 2
        args.out.mkdir(parents=True, exist_ok=True)
        outs = [args.out / f"{i:03d}.json" for i in range(len(prompts))]
    else:
        prompts, outs = [args.prompt], [args.out]
    try:
        print(f"loading {args.target} <- {args.draft} ...", file=sys.stderr)
        target, draft = load_pair(args.target, args.draft, args.device, args.dtype)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for prompt, out in zip(prompts, outs, strict=True):
        rec = Recording(target, make_drafter(target, draft), prompt, cfg, chat=args.chat)
        for step in rec:
            done = len(rec.trace["prompt"]["token_ids"])
            made = step["context_length"] - done + step["n_accepted"] + 1
            _progress(min(made, cfg.max_new_tokens), cfg.max_new_tokens, out.name)
        print(file=sys.stderr)
        dump(rec.trace, out)
        print(
            f"wrote {out}: {len(rec.trace['steps'])} steps, {len(rec.trace['output']['token_ids'])} tokens "
            f"({rec.trace['output']['stop_reason']})",
            file=sys.stderr,
        )
    return 0


def _progress(done: int, total: int, label: str) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
