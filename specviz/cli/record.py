"""`python -m specviz record`: run speculative decoding on real models and write traces.

A module of its own so that `validate`, `summarize` and `export` never load torch: specviz.cli.commands
imports this one only when `record` runs. Usage errors exit 2 with one line; a failed or interrupted
run keeps its finished steps as a valid, stopped trace (or writes no file).

Imports: specviz.drafters, specviz.models, specviz.run, specviz.trace.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from specviz.cli.words import TRACE_SUFFIXES, one_line, say
from specviz.drafters.factory import make_drafter
from specviz.drafters.pair import load_pair
from specviz.models.lm import pick_device
from specviz.models.presets import ModelLoadError
from specviz.run.options import decode_config
from specviz.run.record import Recording
from specviz.run.treesize import resolve_tree
from specviz.trace import dump, dumps, finish

__all__ = ["record"]


class _UsageError(Exception):
    """A problem with what the user asked for: exit 2 with this one-line message."""


def record(args: argparse.Namespace) -> int:
    """Run `record`; returns the exit code."""
    try:
        return _record_checked(args)
    except _UsageError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2


def _outputs(args: argparse.Namespace) -> tuple[list[str], list[Path]]:
    """The prompts and where each trace goes; checked before any model is loaded."""
    out: Path = args.out
    if args.prompt_file is None:
        if out.is_dir():
            raise _UsageError(f"-o {out} is a directory; give a file name (a directory is for --prompt-file)")
        if not out.name.endswith(TRACE_SUFFIXES):
            raise _UsageError(f"-o {out}: the trace file name must end in {', '.join(TRACE_SUFFIXES)}")
        if args.chat is False and not args.prompt:  # raw text with nothing in it: no model can start from it
            raise _UsageError("--prompt is empty and --no-chat uses it as raw text: give some text")
        return [args.prompt], [out]
    try:
        text = args.prompt_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _UsageError(
            f"cannot read --prompt-file {args.prompt_file}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    prompts = [ln.rstrip("\r") for ln in text.split("\n") if ln.strip()]
    if not prompts:
        raise _UsageError(f"--prompt-file {args.prompt_file} has no prompts (one per line)")
    if out.exists() and not out.is_dir():
        raise _UsageError(f"-o {out} exists and is not a directory; with --prompt-file OUT is a directory")
    return prompts, [out / f"{i:03d}.json" for i in range(len(prompts))]


def _record_checked(args: argparse.Namespace) -> int:
    try:
        cfg = decode_config(args, tree=args.tree, top_k_log=args.log_top_k)  # auto is sized once the models load
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    prompts, outs = _outputs(args)
    try:
        pick_device(args.device)
    except (ModelLoadError, RuntimeError) as exc:  # torch.device("nonsense") raises RuntimeError
        raise _UsageError(f"--device {args.device}: {str(exc).splitlines()[0]}") from None
    try:
        outs[0].parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"cannot create {outs[0].parent}: {exc.strerror or exc}") from None
    print(f"loading {args.target} <- {args.draft} ...", file=sys.stderr)
    try:
        target, draft = load_pair(args.target, args.draft, args.device, args.dtype, args.weights)
    except ModelLoadError as exc:
        raise _UsageError(str(exc)) from None
    cfg, tree_meta = resolve_tree(cfg, args.tree, target, make_drafter(target, draft, args.lookup_below), say)
    for prompt, out in zip(prompts, outs, strict=True):
        try:
            # a .jsonl output streams: a killed run still leaves its steps
            stream = out if out.name.endswith(".jsonl") else None
            rec = Recording(
                target,
                make_drafter(target, draft, args.lookup_below),
                prompt,
                cfg,
                chat=args.chat,
                jsonl=stream,
                extra_meta=tree_meta,
            )
        except ModelLoadError as exc:  # e.g. --chat with a tokenizer that has no chat template
            raise _UsageError(str(exc)) from None
        if not rec.prompt_ids:
            raise _UsageError(f"the prompt {prompt[:40]!r} encodes to no tokens; give some text")
        steps = iter(rec)
        try:
            for step in steps:
                done = step["context_length"] - len(rec.prompt_ids) + step["n_accepted"] + 1
                _progress(min(done, cfg.max_new_tokens), cfg.max_new_tokens, out.name)
            _save(rec, out)
        except KeyboardInterrupt:
            steps.close()  # finishes the trace with stop_reason "stopped"
            _save(rec, out)
            print(f"\ninterrupted: wrote the partial trace to {out}", file=sys.stderr)
            return 130
        except Exception as exc:  # the run failed: keep its finished steps as a valid, stopped trace
            if os.environ.get("SPECVIZ_DEBUG"):
                raise
            kept = _save_partial(rec, out)
            print(f"\nerror: the run failed: {type(exc).__name__}: {one_line(str(exc))[:300]}; {kept}", file=sys.stderr)
            return 1
        o = rec.trace["output"]
        end = "\n" if sys.stderr.isatty() else ""
        print(
            f"{end}wrote {out}: {len(rec.trace['steps'])} steps, {len(o['token_ids'])} tokens ({o['stop_reason']})",
            file=sys.stderr,
        )
    return 0


def _save(rec: Recording, out: Path) -> None:
    if rec.jsonl is None:  # a streamed JSONL trace is already complete on disk
        dump(rec.trace, out)


def _save_partial(rec: Recording, out: Path) -> str:
    """After a failed run: the steps that can be written, as a stopped trace, or no file; says which."""
    steps = rec.trace["steps"]
    good = next((i for i, s in enumerate(steps) if not _writable(s)), len(steps))
    if good < len(steps):  # a streamed trace never holds such a step: it is written before it is kept
        del steps[good:]
        out_ = finish(rec.trace, "stopped")["output"]
        out_["text"] = rec.target.tokenizer.decode(out_["token_ids"])
    if steps:
        try:
            _save(rec, out)
            return f"kept the {len(rec.trace['steps'])} finished steps in {out} (stop_reason stopped)"
        except (ValueError, OSError):
            pass
    if rec.jsonl is not None:  # the stream we opened: a header with no steps, or steps that cannot be kept
        out.unlink(missing_ok=True)
    return "no trace was written"


def _writable(obj: object) -> bool:
    try:
        dumps(obj)  # type: ignore[arg-type]
    except ValueError:  # NaN or infinity
        return False
    return True


def _progress(done: int, total: int, label: str) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
