"""Command line: `python -m specviz record | validate | summarize | export | export-live | bench`; docs/CLI.md.

Errors are one line on stderr, never a traceback: exit 2 for bad arguments or models that will
not load, 1 for invalid traces (and unexpected failures), 130 for Ctrl-C. `validate`,
`summarize` and `export` need only the pure-Python layers (trace, formats; teach for export);
`record` and `bench` import torch and the models when they run (specviz.cli.record, specviz.run.bench),
`export-live` torch and onnx (specviz.export.bundle).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from specviz.cli.words import clean, one_line
from specviz.formats.opener import load_any, load_record
from specviz.formats.runsummary import FORMAT as SUMMARY
from specviz.formats.runsummary import describe, summary_stats
from specviz.run.options import (
    add_decoding_arguments,
    add_lookup_argument,
    add_policy_arguments,
    add_tree_argument,
    int_at_least,
)
from specviz.trace import (
    MAX_PROBLEMS,
    Trace,
    TraceError,
    finish,
    load,
    no_draft_words,
    rate,
    summarize,
    undefined_words,
    validate,
)

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # one line instead of argparse's usage dump: the usage is one --help away
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", default="default", help="hub id, local directory, .gguf file, or 'default' (embedded)")
    p.add_argument(
        "--draft",
        default="default",
        help="default, feature (the embedded head that reads the target), standalone (the embedded draft model), ngram, a hub id, a local directory or a .gguf file",
    )
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16"],
        help="auto: bf16 on cuda; on a CPU bf16 where a measured probe finds it faster, else fp32",
    )
    p.add_argument(
        "--weights",
        default="full",
        choices=["full", "int8", "int4"],
        help="the evaluation model's weights: full, or torch's weight-only int8/int4 (CPU, bf16 activations)",
    )


def _parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m specviz", description="Record, check and summarise speculative decoding traces.")
    sub = ap.add_subparsers(dest="cmd", required=True)

    rec = sub.add_parser("record", help="run speculative decoding and write a trace")
    _add_model_args(rec)
    src = rec.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="the prompt text")
    src.add_argument(
        "--prompt-file", type=Path, help="one prompt per line; OUT is then a directory of 000.json, 001.json, ..."
    )
    rec.add_argument("--gamma", type=int_at_least(1), default=4, help="draft length (tokens proposed per step)")
    add_policy_arguments(rec)
    add_lookup_argument(rec)
    add_tree_argument(rec)
    add_decoding_arguments(rec)
    rec.add_argument("--max-new-tokens", type=int_at_least(1), default=64)
    rec.add_argument("--log-top-k", type=int_at_least(1), default=10, help="entries kept in each logged top list")
    rec.add_argument(
        "-o",
        "--out",
        type=Path,
        required=True,
        help="trace file (.json, .json.gz, .jsonl) or, with --prompt-file, a directory",
    )

    val = sub.add_parser("validate", help="check traces' structure and semantics (exit 0 valid, 1 invalid)")
    val.add_argument("files", nargs="+", type=Path, metavar="FILE")
    val.add_argument(
        "--minimal",
        action="store_true",
        help="accept what the app's replay accepts: minimal traces (only the decisions required) and event logs",
    )
    sm = sub.add_parser(
        "summarize", help="acceptance and timing summary of a trace, an event log or a serving engine's run summary"
    )
    sm.add_argument("file", type=Path)
    sm.add_argument("--json", action="store_true", help="print JSON instead of a table")

    ex = sub.add_parser(
        "export",
        help="write a lesson file: one HTML file that plays traces offline (no server, no network)",
        description="Write one self-contained HTML file that steps through the traces in any browser, offline "
        "(file://, a phone, a static web host). Several traces get a chooser. Accepts what the app replays: "
        "traces, minimal traces and event logs.",
    )
    ex.add_argument("files", nargs="+", type=Path, metavar="TRACE")
    ex.add_argument("-o", "--output", type=Path, required=True, metavar="LESSON.html")
    ex.add_argument("--title", help="the page's title (default: from the trace's name)")
    from specviz.export.quantize import DEFAULT_QUANT, QUANTS

    el = sub.add_parser(
        "export-live",
        help="write a static folder where every student decodes in their own browser (ONNX models, tokenizer, page)",
        description="Export the embedded pair to ONNX with its KV cache, with the tokenizer, a manifest and the "
        "Live in your browser page, into one folder that any static web server serves "
        "(python -m http.server -d DIR). The first export takes about two minutes; later ones seconds.",
    )
    el.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    el.add_argument(
        "--quant",
        choices=QUANTS,
        default=DEFAULT_QUANT,
        help=f"how the weights are stored (default {DEFAULT_QUANT}: the same tokens as fp32 at a fifth of the size; "
        "docs/BROWSER.md)",
    )
    from specviz.run.bench import add_arguments

    add_arguments(sub.add_parser("bench", help="measure target-only vs specviz vs HF assisted generation"))
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "validate":
            return _validate(args.files, args.minimal)
        if args.cmd == "summarize":
            return _summarize(args.file, args.json)
        if args.cmd == "record":
            from specviz.cli.record import record  # torch and the models: only when recording

            return record(args)
        if args.cmd == "export":
            return _export(args.files, args.output, args.title)
        if args.cmd == "export-live":
            return _export_live(args.output, args.quant)
        from specviz.run.bench import run as bench

        return bench(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # the last resort: one line, not a traceback (SPECVIZ_DEBUG=1 shows it); bench keeps its own policy
        if args.cmd == "bench" or os.environ.get("SPECVIZ_DEBUG"):
            raise
        print(f"error: unexpected {type(exc).__name__}: {one_line(str(exc))[:300]}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------- validate, summarize


def _unnamed(message: str, path: Path) -> str:
    """loads() names the file in its messages; the CLI prints the full path in front already."""
    return message.removeprefix(path.name).lstrip(": ") if message.startswith(path.name) else message


def _check(path: Path, minimal: bool) -> tuple[Trace | None, list[str]]:
    """The trace and its problems; a file that does not parse has one problem and no trace."""

    try:
        trace = load_any(path) if minimal else load(path)
    except TraceError as exc:
        return None, [_unnamed(str(exc), path)]
    problems = validate(trace, strict=not minimal)
    if minimal and not problems and "output" not in trace:
        finish(trace, "stopped")  # a minimal trace may leave its output out: rebuilt from the steps
        problems = validate(trace, strict=False)
    return trace, problems


def _validate(paths: list[Path], minimal: bool = False) -> int:

    rc = 0
    for path in paths:
        trace, problems = _check(path, minimal)
        for line in problems:
            print(f"{path}: {clean(line)}")
        if len(problems) >= MAX_PROBLEMS:
            print(f"{path}: (only the first {MAX_PROBLEMS} problems are shown)")
        if problems or trace is None:
            if not minimal and not _check(path, True)[1]:
                print(f"{path}: (a valid minimal trace or event log: the app replays it; check it with --minimal)")
            rc = 1
            continue
        out = trace["output"]
        note = "; output rebuilt from the steps of an interrupted run" if out.get("recovered") else ""
        print(
            f"{path}: valid ({len(trace['steps'])} steps, {len(out['token_ids'])} tokens, {out['stop_reason']}{note})"
        )
    return rc


def _export(paths: list[Path], out: Path, title: str | None) -> int:
    """Check every trace as the app's replay does, then write the lesson file (or nothing)."""
    from specviz.teach.lesson import write_lesson

    traces = []
    for path in paths:
        trace, problems = _check(path, True)
        if trace is None or problems:
            for line in problems[:5]:
                print(f"{path}: {clean(line)}", file=sys.stderr)
            print(f"{path}: not exported; fix the trace or check it with `validate --minimal`", file=sys.stderr)
            return 1
        traces.append((path.name.removesuffix(".gz").removesuffix(".json").removesuffix(".jsonl"), trace))
    if not out.parent.is_dir():
        print(f"{out}: the folder {out.parent} does not exist; create it or choose another -o", file=sys.stderr)
        return 1
    try:
        size = write_lesson(traces, out, title)
    except ValueError as exc:  # a number JSON cannot hold (NaN) in a trace
        print(f"{out}: not written: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{out}: could not be written ({one_line(exc.strerror or str(exc))})", file=sys.stderr)
        return 1
    steps = sum(len(t["steps"]) for _, t in traces)
    print(
        f"{out}: lesson file written ({size / 2**20:.1f} MiB, {len(traces)} trace(s), {steps} steps); open it in any browser"
    )
    return 0


def _export_live(out: Path, quant: str) -> int:
    """Write the browser folder (specviz.export.bundle); exit 2 when the pair will not load, 1 on failure."""
    from specviz.export.bundle import ExportError, write_bundle  # torch and onnx: only when exporting
    from specviz.models.presets import ModelLoadError

    try:
        size = write_bundle(out, quant)
    except ModelLoadError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except ExportError as exc:
        print(f"{out}: not written: {one_line(str(exc))}", file=sys.stderr)
        return 1
    print(f"{out}: written ({size / 1e6:.0f} MB); serve it with: python -m http.server -d {out}")
    return 0


def _summarize(path: Path, as_json: bool) -> int:
    """A trace, an event log (a minimal trace) or a serving engine's run summary, summarised."""

    try:
        record = load_record(path)
    except TraceError as exc:
        print(f"{path}: {clean(_unnamed(str(exc), path))}", file=sys.stderr)
        return 1
    if record.get("format") == SUMMARY:  # totals from a serving engine: no steps to check
        rs = record
        if as_json:
            keep = ("engine", "source", "records", "timings", "missing")
            print(json.dumps({"kind": "run summary", **{k: rs[k] for k in keep}, **summary_stats(rs)}, indent=2))  # type: ignore[literal-required]
            return 0
        print("\n".join(clean(line) for line in describe(rs)))  # type: ignore[arg-type]
        return 0
    trace: Trace = record  # type: ignore[assignment]
    problems = validate(trace)
    if problems and not validate(trace, strict=False):  # a minimal trace or an event log: summarised like the app
        problems = []
        if "output" not in trace:
            finish(trace, "stopped")
    if problems:
        print(f"{path}: {clean(problems[0])} (run `validate` for the full list)", file=sys.stderr)
        return 1
    s = summarize(trace)
    if as_json:
        print(json.dumps(s, indent=2))
        return 0
    meta = trace.get("meta", {})

    def name(role: str) -> str:  # a minimal trace may leave the models and the rule out
        return clean(str(meta.get(role, {}).get("name", "unknown")))

    print(f"{name('target')} <- {name('draft')}, gamma {meta.get('gamma', '?')}, rule {name('rule')}")
    print(f"steps               {s['steps']}")
    print(f"tokens              {s['tokens']}  ({s['stop_reason']})")
    print(f"tokens per step     {s['tokens_per_step']:.2f}")
    if s["alpha"] is None:
        print(f"alpha (per test)    n/a  (drafts kept n/a, mean accepted n/a: {undefined_words(s)})")
    else:
        # two shares that students confuse: name each by what it divides (glossary: α and drafts kept)
        print(f"alpha (per test)    {s['alpha']:.3f}  accepted / tested drafts: the chance one draft passes")
        print(
            f"drafts kept         {rate(s['acceptance_rate'], '.1%')}  accepted / drafted: the share that reached the output"
        )
        print(f"mean accepted       {rate(s['mean_accepted'])} of up to {meta.get('gamma', '?')}")
    print("per position        " + "  ".join("-" if a is None else f"{a:.0%}" for a in s["per_position_acceptance"]))
    print("accepted lengths    " + "  ".join(f"{n}:{c}" for n, c in enumerate(s["accepted_length_counts"])))
    if s["steps_without_draft"]:
        print(f"steps with no draft {s['steps_without_draft']}  ({no_draft_words(s)})")
    if s["draft_share"] is not None:
        print(
            f"time                draft {s['draft_ms']:.0f} ms ({s['draft_share']:.0%}), verify {s['verify_ms']:.0f} ms"
        )
    return 0
