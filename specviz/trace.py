"""The trace format: building, reading and writing, validation and summaries. Pure Python, no torch.

A trace is a JSON object (also .json.gz, and JSONL: a header line, one line per step, then an
output line, so an interrupted run still leaves a readable file). docs/TRACE_FORMAT.md describes
every field; docs/trace.schema.json is the JSON Schema of its structure. Loading treats every
file as hostile: `loads` raises only TraceError, and `validate` never raises at all.

`validate` is strict by default: a trace must carry everything specviz records (q, p, r, top
lists, timings). `validate(trace, strict=False)` accepts a *minimal* trace, the kind another
engine's log or an event-log import gives: only the decisions are required (each draft's token
and `accepted`, `n_accepted`), and every optional field that *is* present is checked as strictly
as ever. What a minimal trace lacks is the UI's business to say (specviz.figures.missing_parts).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import platform
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import IO, Any, Literal, NotRequired, TypedDict

__all__ = [
    "FORMAT",
    "VERSION",
    "JsonlWriter",
    "Step",
    "StepTree",
    "TopEntry",
    "Trace",
    "TraceError",
    "TreeNode",
    "dump",
    "dumps",
    "finish",
    "load",
    "loads",
    "new_trace",
    "no_draft_words",
    "output_ids",
    "rate",
    "read_file",
    "summarize",
    "undefined_words",
    "validate",
]

FORMAT = "specviz-trace"
VERSION = 2  # 2: steps may carry a draft tree (step.tree); 1 reads as single-branch trees
RULE_NAMES = ("sampling", "greedy", "threshold", "typical")
STOP_REASONS = ("eos", "max_new_tokens", "stopped")
NEXT_KINDS = ("correction", "bonus")
MAX_BYTES = 64 * 2**20  # the file, and the JSON text after gunzip, may be at most this long
MAX_STEPS = 100_000
MAX_INT_DIGITS = 100  # token ids and seeds are short; a 5000-digit integer is an attack, not a trace
MAX_PROBLEMS = 20
TOL = 1e-4  # slack when re-deriving a logged number from other logged (float32) numbers
GZIP_MAGIC = b"\x1f\x8b"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class TopEntry(TypedDict):
    token_id: int
    token: str
    prob: float
    bytes: NotRequired[str]  # hex, only for a token that is part of a character (see byte_label)


class DraftEntry(TypedDict):
    token_id: int
    token: str
    q: float
    top: list[TopEntry]
    bytes: NotRequired[str]
    # the draft's own distribution before temperature / top-k / top-p, when those changed it
    q_raw: NotRequired[float]
    top_raw: NotRequired[list[TopEntry]]


class VerifyEntry(TypedDict):
    p: float
    accept_prob: float | None  # sampling: min(1, p/q)
    r: float | None  # sampling: the uniform draw compared with accept_prob
    ratio: float | None  # threshold: p/q, compared with tau
    cutoff: float | None  # typical: min(epsilon, delta * exp(-H(p)))
    accepted: bool | None  # None after the first rejection: never evaluated
    top: list[TopEntry]
    p_raw: NotRequired[float]  # the evaluation model's own p before warping, when warping changed it
    top_raw: NotRequired[list[TopEntry]]


class NextToken(TypedDict):
    token_id: int
    token: str
    kind: Literal["correction", "bonus"]
    source: str  # residual | p | argmax: the distribution it was drawn from
    prob: float
    top: list[TopEntry]
    bytes: NotRequired[str]
    p_raw: NotRequired[float]  # the evaluation model's own p of this token at this position, unwarped
    top_raw: NotRequired[list[TopEntry]]


class TreeNode(TypedDict):
    """One node of a step's draft tree (format version 2): the draft's token, where it hangs, and
    the rule's numbers when it was tested (None: never tested)."""

    token_id: int
    token: str
    parent: int  # -1: the root (the last context token)
    depth: int  # 1: a child of the root
    q: float  # the draft's probability of this token in its parent's distribution
    p: float  # the evaluation model's probability of it after the path to its parent
    accepted: bool | None
    r: float | None
    accept_prob: float | None  # sampling: min(1, p_i/q_i) with the earlier siblings removed
    p_test: float | None  # sampling: p_i(x), after the earlier siblings' rejections
    q_test: float | None  # sampling: q_i(x), q without the earlier siblings
    ratio: float | None
    cutoff: float | None
    score: float  # product of q along the path (the draft's confidence, EAGLE-2)
    bytes: NotRequired[str]


class StepTree(TypedDict):
    shape: str  # the --tree text
    nodes: list[TreeNode]  # parent before child
    path: list[int]  # the accepted nodes, root first (len = n_accepted)
    main: list[int]  # the nodes that `draft` and `verify` show, in order: the path, then the first
    # child tested where every child was rejected and its first-child line (never evaluated)


class Step(TypedDict):
    index: int
    context_length: int
    draft: list[DraftEntry]
    verify: list[VerifyEntry]
    n_accepted: int
    next: NextToken | None
    timing_ms: dict[str, float]
    no_draft: NotRequired[str]  # a key of NO_DRAFT_REASONS, only on a step that drafted nothing
    tree: NotRequired[StepTree]  # version 2, a step that drafted a tree; draft/verify show its main line


# why a step drafted nothing, as the decoder records it (step.no_draft)
NO_DRAFT_REASONS = {
    "budget": "the token budget left room only for the evaluation model's token",
    "no_match": "prompt lookup found nothing to copy",
    "no_context": "the draft had no features to read yet (a one-token prompt)",
    "drafter": "the drafter proposed nothing",
}


def no_draft_reason(step: Step) -> str:
    """Why a step drafted nothing, in words, from what the trace recorded (never guessed)."""
    return NO_DRAFT_REASONS.get(str(step.get("no_draft")), "the trace does not record why")


def rate(value: float | None, fmt: str = ".2f") -> str:
    """A summary's rate for people: formatted, or "n/a" where it is undefined (None)."""
    return "n/a" if value is None else format(value, fmt)


def undefined_words(summary: dict[str, Any]) -> str:
    """Why α, the acceptance rate and mean accepted are undefined ("" when they are defined)."""
    if summary.get("alpha") is not None:
        return ""
    if not summary.get("drafted"):
        why = no_draft_words(summary)
        return "nothing was drafted" + (f" ({why})" if why else "") + ", so there is no acceptance to measure"
    return "no draft was ever tested (every step ended before its drafts were decided)"


def no_draft_words(summary: dict[str, Any]) -> str:
    """The reasons steps drafted nothing, in words: "2: prompt lookup found nothing to copy; 1: …"."""
    counts = summary.get("no_draft_reasons") or {}
    return "; ".join(f"{n}: {NO_DRAFT_REASONS.get(k, 'the trace does not record why')}" for k, n in counts.items())


class Trace(TypedDict, total=False):
    format: str
    version: int
    meta: dict[str, Any]
    prompt: dict[str, Any]
    steps: list[Step]
    output: dict[str, Any]


class TraceError(ValueError):
    """A trace that cannot be read; the message says what is wrong and where."""


# The upgrade hook: UPGRADES[v] turns a version-v trace (a parsed dict) into a version-(v + 1)
# one, in place. `loads` applies the chain up to VERSION, so a reader only ever sees the current
# format.


def _v1_to_v2(trace: dict[str, Any]) -> None:
    """Version 2 only adds the optional step.tree: a version-1 step is a chain, the tree with one
    branch, and every reader treats a step without `tree` that way. Nothing to rewrite."""


UPGRADES: dict[int, Callable[[dict[str, Any]], None]] = {1: _v1_to_v2}


# ---------------------------------------------------------------- building


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "specviz"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def new_trace(meta: dict[str, Any], prompt_text: str, prompt_ids: list[int]) -> Trace:
    meta = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "versions": library_versions(), **meta}
    return {
        "format": FORMAT,
        "version": VERSION,
        "meta": meta,
        "prompt": {"text": prompt_text, "token_ids": list(prompt_ids)},
        "steps": [],
    }


def output_ids(steps: Iterable[Step], eos_ids: Iterable[int] = (), max_new_tokens: int | None = None) -> list[int]:
    """Concatenate each step's accepted drafts and next token; cut at the first EOS and the budget."""
    eos = set(eos_ids)
    out: list[int] = []
    for step in steps:
        toks = [d["token_id"] for d in step["draft"][: step["n_accepted"]]]
        if step.get("next") is not None:
            toks.append(step["next"]["token_id"])
        for t in toks:
            if max_new_tokens is not None and len(out) >= max_new_tokens:
                return out
            out.append(t)
            if t in eos:
                return out
    return out


def finish(trace: Trace, stop_reason: str | None = None, text: str | None = None) -> Trace:
    """Fill `output` from the steps. stop_reason defaults to what the steps show."""
    meta = trace["meta"]
    eos = meta.get("eos_token_ids", [])
    ids = output_ids(trace["steps"], eos, meta.get("max_new_tokens"))
    if stop_reason is None:
        if ids and ids[-1] in eos:
            stop_reason = "eos"
        elif len(ids) >= meta.get("max_new_tokens", math.inf):
            stop_reason = "max_new_tokens"
        else:
            stop_reason = "stopped"
    if text is None:  # rebuilt from the logged tokens; bytes first, so a split character is whole again
        by_id = _token_texts(trace)
        text = b"".join(by_id.get(t, b"") for t in ids).decode("utf-8", "replace")
    trace["output"] = {"token_ids": ids, "text": text, "stop_reason": stop_reason}
    return trace


def byte_label(b: bytes) -> str:
    """A token's bytes as text: whole characters as themselves, bytes that are only part of a
    character as "‹F0 9F›" (hex, marked), so a split emoji never shows as a replacement character."""
    out: list[str] = []
    partial: list[str] = []
    for ch in b.decode("utf-8", "surrogateescape"):  # a byte that is not whole UTF-8 → U+DC80..U+DCFF
        if 0xDC80 <= ord(ch) <= 0xDCFF:
            partial.append(f"{ord(ch) - 0xDC00:02X}")
            continue
        if partial:
            out.append(f"‹{' '.join(partial)}›")
            partial = []
        out.append(ch)
    if partial:
        out.append(f"‹{' '.join(partial)}›")
    return "".join(out)


def token_bytes(entry: TopEntry | DraftEntry | NextToken) -> bytes:
    """What a logged token adds to the text: its bytes where the trace has them, else its text."""
    raw = entry.get("bytes")
    return bytes.fromhex(raw) if isinstance(raw, str) else entry["token"].encode("utf-8", "surrogatepass")


def _token_texts(trace: Trace) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for step in trace["steps"]:
        for d in step["draft"]:
            out[d["token_id"]] = token_bytes(d)
        if step.get("next"):
            out[step["next"]["token_id"]] = token_bytes(step["next"])  # type: ignore[arg-type]
    return out


# ---------------------------------------------------------------- writing


def _line(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(trace: Trace) -> str:
    return _line(trace)


def dump(trace: Trace, path: str | Path) -> None:
    """Write by suffix: .jsonl (header, steps, output), .gz (gzip-compressed JSON), else JSON.

    All or nothing: the file is written beside its name and renamed into place, so a trace that
    cannot be written (a NaN, a full disk) leaves no file, and an old file at `path` is kept.
    Raises ValueError for a value JSON cannot hold (NaN, infinity) and OSError from the disk.
    """
    path = Path(path)
    name = path.name
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    try:
        if name.endswith(".jsonl"):
            with JsonlWriter(tmp, trace) as w:
                for step in trace["steps"]:
                    w.step(step)
                if "output" in trace:
                    w.output(trace["output"])
        else:
            data = dumps(trace).encode()
            if name.endswith(".gz"):
                data = gzip.compress(data, mtime=0)  # mtime 0: the same trace gives the same bytes
            tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class JsonlWriter:
    """Streams a trace: the header first, each step as it comes (flushed), the output last.

    Each record is one line ending in "\\n", written and flushed in one call, so a run killed at
    any moment leaves every finished step readable (see `loads`).
    """

    def __init__(self, path: str | Path, trace: Trace) -> None:
        self._f: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._line({k: v for k, v in trace.items() if k not in ("steps", "output")})

    def _line(self, obj: object) -> None:
        self._f.write(_line(obj) + "\n")
        self._f.flush()

    def step(self, step: Step) -> None:
        """Append one step. A step JSON cannot hold (a NaN) raises ValueError and writes nothing."""
        self._line(step)

    def output(self, output: dict[str, Any]) -> None:
        self._line({"output": output})

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- reading


def _no_constant(name: str) -> None:
    raise TraceError(f"the file contains {name}, which JSON does not allow; probabilities must be finite numbers")


def _finite_float(s: str) -> float:
    x = float(s)
    if not math.isfinite(x):  # "1e400" parses to inf: as bad as a literal Infinity
        raise TraceError(f"the number {s[:30]} is too large to be a float")
    return x


def _short_int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_INT_DIGITS:  # also spares int() its quadratic time on huge literals
        raise TraceError(f"an integer with {len(s.lstrip('-'))} digits is too large for a trace")
    return int(s)


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float, parse_int=_short_int)


def _raw_decode(text: str, start: int, where: str) -> tuple[Any, int]:
    """Parse one JSON value at text[start:]; every failure becomes a TraceError naming `where`."""
    try:
        return _DECODER.raw_decode(text, start)
    except TraceError as exc:
        raise TraceError(f"{where}: {exc}") from None
    except RecursionError:
        raise TraceError(f"{where}: JSON nested too deeply to be a trace") from None
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # anything else the parser can throw on hostile input
        raise TraceError(f"{where}: not valid JSON ({str(exc)[:80]})") from None


def _parse_line(line: str, where: str) -> Any:
    obj, end = _raw_decode(line, len(line) - len(line.lstrip()), where)
    if line[end:].strip():
        raise TraceError(f"{where}: unexpected data after the JSON value (column {end + 1})")
    return obj


def read_text(data: bytes | bytearray | memoryview | str, name: str, max_bytes: int, hint: str) -> str:
    """Untrusted bytes → text: size cap, gzip (capped too), non-empty, strict UTF-8, no BOM.

    Every loader of user files starts here, so each limit is enforced in one place.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    elif not isinstance(data, bytes):
        data = bytes(data)  # bytearray, memoryview (what an upload widget may hand over)
    if len(data) > max_bytes:
        raise TraceError(f"{name} is {_mb(len(data))}; the limit is {_mb(max_bytes)}")
    if data[:2] == GZIP_MAGIC:
        data = _gunzip(data, name, max_bytes)
    if not data.strip():
        raise TraceError(f"{name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{name} is not UTF-8 text (bad byte at offset {exc.start}); {hint}") from None
    return text.removeprefix("\ufeff")


def loads(data: bytes | str, name: str = "trace", max_bytes: int = MAX_BYTES) -> Trace:
    """Parse bytes (JSON, gzip-compressed JSON, or JSONL) into a trace dict.

    Raises TraceError with a readable message for anything that is not a trace, never anything
    else. Only the top-level shape is checked here; the rest is validate()'s job.

    A JSONL file without its output line is an interrupted run. Its complete step lines are kept
    (a last line cut off mid-write is dropped), and when those steps pass validate(), `output`
    is rebuilt from them with finish() and marked `"recovered": true`, so the trace replays like
    any other. When they do not, `output` stays missing and validate() says why.
    """
    text = read_text(data, name, max_bytes, "is it a trace file?")
    start = len(text) - len(text.lstrip())
    if not text.startswith("{", start):
        raise TraceError(f"{name} does not start with a JSON object; a trace is a JSON object or JSONL lines")
    head, end = _raw_decode(text, start, name)
    rest = text[end:]
    jsonl = False
    if not rest.strip():
        trace = head
    elif isinstance(head, dict) and "steps" not in head and rest.lstrip(" \t\r").startswith("\n"):
        trace, jsonl = _from_jsonl(head, text, end, name), True
    else:
        line = text.count("\n", 0, end + len(rest) - len(rest.lstrip())) + 1
        raise TraceError(f"{name} line {line}: unexpected data after the JSON object")
    _check_top_level(trace, name)
    if _SURROGATE_ESCAPE.search(text):
        check_unicode(trace, name)
    if jsonl and "output" not in trace and not _guarded(trace, 1, check_output=False):
        finish(trace)
        trace["output"]["recovered"] = True
    return trace  # type: ignore[return-value]


def _check_top_level(trace: object, name: str) -> None:
    if not isinstance(trace, dict):
        raise TraceError(f"{name}: the top level must be a JSON object")
    if trace.get("format") != FORMAT:
        raise TraceError(
            f'{name}: not a specviz trace ("format" must be "{FORMAT}", got {_short(trace.get("format"))})'
        )
    _upgrade(trace, name)
    for key, typ, what in (("meta", dict, "object"), ("prompt", dict, "object"), ("steps", list, "array")):
        if not isinstance(trace.get(key), typ):
            hint = " (a JSONL trace needs at least one step line)" if key == "steps" and "steps" not in trace else ""
            raise TraceError(f'{name}: "{key}" is missing or is not a JSON {what}{hint}')
    if len(trace["steps"]) > MAX_STEPS:
        raise TraceError(f"{name}: {len(trace['steps'])} steps; the limit is {MAX_STEPS}")


def check_unicode(obj: Any, name: str) -> None:
    """Refuse a lone surrogate (JSON's "\\ud800"): Python keeps it, but no UTF-8 writer, browser or
    download can carry it, so a trace holding one would fail far from here."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            bad = next((ch for ch in x if "\ud800" <= ch <= "\udfff"), None)
            if bad is not None:
                raise TraceError(
                    f"{name} contains the escape \\u{ord(bad):04x}, half of a surrogate pair: not valid Unicode text"
                )
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


def _upgrade(trace: dict[str, Any], name: str) -> None:
    """Bring an older trace up to VERSION through UPGRADES, or refuse it naming its version."""
    version = trace.get("version")
    if "version" not in trace:
        raise TraceError(f'{name}: the trace has no "version"; this specviz reads version {VERSION}')
    if not _is_int(version):
        raise TraceError(f"{name}: trace version {_short(version)} is not supported; versions are integers")
    if version > VERSION:
        raise TraceError(
            f"{name}: trace version {version} is not supported; this specviz reads version {VERSION} "
            "(the file was written by a newer specviz: update specviz to open it)"
        )
    while version < VERSION:
        upgrade = UPGRADES.get(version)
        if upgrade is None:
            known = ", ".join(str(v) for v in sorted(UPGRADES))
            can = f"it upgrades versions {known}" if known else "there is no older version it can upgrade"
            raise TraceError(
                f"{name}: trace version {version} is not supported; this specviz reads version {VERSION} ({can})"
            )
        try:
            upgrade(trace)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise TraceError(f"{name}: cannot upgrade this version-{version} trace ({type(exc).__name__})") from None
        version += 1
        trace["version"] = version


def _from_jsonl(head: dict[str, Any], text: str, end: int, name: str) -> dict[str, Any]:
    """Steps and output from the lines after the header (which ends at text[end])."""
    first_no = text.count("\n", 0, end) + 2  # file line number of the line after the header
    lines = text[text.index("\n", end) + 1 :].split("\n")  # only "\n": tokens may hold U+2028 or U+0085
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    steps: list[Any] = []
    output: Any = None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{name} line {first_no + i}"
        if output is not None:
            raise TraceError(f"{where}: more data after the output line")
        try:
            obj = _parse_line(line, where)
        except TraceError:
            if i == last and not text.endswith("\n"):
                break  # a run killed mid-write leaves its last line unfinished: keep the steps before it
            raise
        if isinstance(obj, dict) and set(obj) == {"output"}:
            output = obj["output"]
            continue
        steps.append(obj)
        if len(steps) > MAX_STEPS:
            raise TraceError(f"{name}: more than {MAX_STEPS} steps")
    trace = dict(head)
    trace["steps"] = steps
    if output is not None:
        trace["output"] = output
    return trace


def _gunzip(data: bytes, name: str, cap: int) -> bytes:
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            # read in bounded chunks: a gzip bomb stops at the cap, not at the end of memory
            while len(out) <= cap and (chunk := f.read(1 << 20)):
                out += chunk
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise TraceError(f"{name} looks gzip-compressed but is damaged ({str(exc)[:100]})") from None
    if len(out) > cap:
        raise TraceError(f"{name} decompresses to more than {_mb(cap)}; refusing it")
    return bytes(out)


def read_file(path: str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    """At most max_bytes of a file, or TraceError: /dev/zero or a growing file cannot exhaust memory."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise TraceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise TraceError(f"{path.name} is larger than the limit of {_mb(max_bytes)}")
    return data


def load(path: str | Path, max_bytes: int = MAX_BYTES) -> Trace:
    return loads(read_file(path, max_bytes), Path(path).name, max_bytes)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"


def _short(value: object) -> str:
    """A value, shortened for a message. Safe on anything JSON can hold (deep nesting, huge ints)."""
    if isinstance(value, str):
        s = repr(value)
    elif isinstance(value, bool) or value is None:
        s = json.dumps(value)
    elif isinstance(value, int):
        s = str(value) if value.bit_length() < 100 else f"an integer of {value.bit_length()} bits"
    elif isinstance(value, float):
        s = repr(value)
    elif isinstance(value, dict):
        s = f"an object with {len(value)} keys"
    elif isinstance(value, list):
        s = f"an array of {len(value)}"
    else:
        s = type(value).__name__
    return s if len(s) <= 40 else s[:37] + "..."


# ---------------------------------------------------------------- validation


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _num(x: object) -> float | None:
    """x as a finite float, or None when it is not a number (bools are not numbers here)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    try:
        f = float(x)
    except OverflowError:  # an int beyond float range
        return None
    return f if math.isfinite(f) else None


def _prob(x: object) -> float | None:
    f = _num(x)
    return f if f is not None and 0.0 <= f <= 1.0 else None


def _nonneg_int(x: object) -> bool:
    return _is_int(x) and x >= 0  # type: ignore[operator]


class _Problems:
    def __init__(self, limit: int) -> None:
        self.items: list[str] = []
        self.limit = limit

    def add(self, where: str, what: str) -> None:
        if len(self.items) < self.limit:
            self.items.append(f"{where}: {what}" if where else what)

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit


@dataclass
class _Meta:
    """What the step checks need from meta; None where meta did not say (or said it badly)."""

    rule: str | None = None
    params: dict[str, float] | None = None
    gamma: int | None = None
    eos: set[int] | None = None
    budget: int | None = None
    top_k: int | None = None
    strict: bool = True  # False: optional data (q, p, r, top, timings, ...) may be missing

    def needs(self, present: bool) -> bool:
        """True when a field is missing and that is a problem (always in strict mode)."""
        return self.strict and not present


def validate(trace: object, limit: int = MAX_PROBLEMS, *, strict: bool = True) -> list[str]:
    """Check structure and semantics. Returns at most `limit` problems, one line each; [] means valid.

    strict=False accepts a minimal trace: only the decisions are required, and whatever optional
    data is present is checked as usual (see the module docstring).

    Never raises, whatever it is given: a trace is untrusted input, and a validator that crashes
    on a bad file is no use to the person holding it.
    """
    return _guarded(trace, limit, strict=strict)


def _guarded(trace: object, limit: int, check_output: bool = True, strict: bool = True) -> list[str]:
    try:
        return _validate(trace, limit, check_output, strict)
    except Exception as exc:  # a bug here must not become a traceback; the fuzz tests hunt for these
        return [f"the validator failed on this trace ({type(exc).__name__}); please report it"]


def _validate(trace: object, limit: int = MAX_PROBLEMS, check_output: bool = True, strict: bool = True) -> list[str]:
    probs = _Problems(limit)
    if not isinstance(trace, dict):
        return [f"the trace must be a JSON object, got {_short(trace)}"]
    if trace.get("format") != FORMAT:
        probs.add("format", f'must be "{FORMAT}", got {_short(trace.get("format"))}')
    if not (_is_int(trace.get("version")) and trace.get("version") in (1, VERSION)):
        # 1 is read as it is (its steps are chains); loads() upgrades it to VERSION
        probs.add("version", f"must be 1 or {VERSION}, got {_short(trace.get('version'))}")
    m = _check_meta(trace.get("meta"), probs, strict)
    prompt_len = _check_prompt(trace.get("prompt"), probs, strict)
    steps = trace.get("steps")
    if not isinstance(steps, list):
        probs.add("steps", f"must be an array, got {_short(steps)}")
        return probs.items
    sound: list[Step] = []
    expected_ctx = prompt_len
    made = 0  # tokens emitted so far, after EOS and budget truncation
    ended: str | None = None  # why generation ended, once it has
    for k, step in enumerate(steps):
        if probs.full:
            break
        where = f"step {k}"
        if ended is not None:
            probs.add(where, f"comes after generation ended ({ended})")
            break
        if not _check_step(step, k, where, m, probs):
            expected_ctx = None
            continue
        sound.append(step)
        n = step["n_accepted"]
        ctx = step.get("context_length")  # missing only in a minimal trace
        if expected_ctx is not None and ctx is not None and ctx != expected_ctx:
            what = "the prompt length" if k == 0 else "previous + n_accepted + 1"
            probs.add(where, f"context_length is {ctx}, expected {expected_ctx} ({what})")
        expected_ctx = ctx + n + 1 if ctx is not None else None
        toks = [d["token_id"] for d in step["draft"][:n]]
        if step.get("next") is not None:
            toks.append(step["next"]["token_id"])
        for t in toks:
            if m.budget is not None and made >= m.budget:
                ended = f"max_new_tokens = {m.budget} reached in step {k}"
                break
            made += 1
            if m.eos is not None and t in m.eos:
                ended = f"EOS in step {k}"
                break
        if m.budget is not None and made >= m.budget:
            ended = ended or f"max_new_tokens = {m.budget} reached in step {k}"
        if "next" in step and step["next"] is None and ended is None:
            if m.eos is not None:
                probs.add(where, "next is null, but generation did not end in this step (no EOS, budget not reached)")
            ended = f"next is null in step {k}"
    if check_output and (m.strict or trace.get("output") is not None):  # lenient: finish() can rebuild it
        _check_output(trace.get("output"), sound, len(sound) == len(steps), m, probs)
    return probs.items


# model: a separate draft model; ngram: prompt lookup; feature: a head that reads the target's features
DRAFT_KINDS = ("model", "ngram", "feature")


def _check_meta(meta: object, probs: _Problems, strict: bool = True) -> _Meta:
    m = _Meta(strict=strict)
    if not isinstance(meta, dict):
        probs.add("meta", f"must be an object, got {_short(meta)}")
        return m
    for role in ("target", "draft"):
        model = meta.get(role)
        if m.needs(role in meta) or (
            role in meta and not (isinstance(model, dict) and isinstance(model.get("name"), str))
        ):
            probs.add(f"meta.{role}", 'must be an object with a string "name"')
        elif isinstance(model, dict) and "kind" in model and model["kind"] not in DRAFT_KINDS:
            probs.add(f"meta.{role}.kind", f"must be {', '.join(DRAFT_KINDS)}, got {_short(model['kind'])}")
    gamma = meta.get("gamma")
    if _is_int(gamma) and gamma >= 1:
        m.gamma = gamma
    elif m.needs("gamma" in meta) or "gamma" in meta:
        probs.add("meta.gamma", f"must be an integer >= 1, got {_short(gamma)}")
    rule = meta.get("rule")
    if not m.strict and "rule" not in meta:
        pass  # a minimal trace need not say which rule decided: the decisions are not re-checked
    elif not isinstance(rule, dict) or not isinstance(rule.get("name"), str) or rule["name"] not in RULE_NAMES:
        name = rule.get("name") if isinstance(rule, dict) else rule
        probs.add("meta.rule", f'"name" must be one of {", ".join(RULE_NAMES)}, got {_short(name)}')
    elif not isinstance(rule.get("params"), dict):
        probs.add("meta.rule.params", f"must be an object, got {_short(rule.get('params'))}")
    else:
        params: dict[str, float] = {}
        need = {"threshold": ("tau",), "typical": ("epsilon", "delta")}.get(rule["name"], ())
        for key in ("tau", "epsilon", "delta"):
            if key not in need and key not in rule["params"]:
                continue
            v = _num(rule["params"].get(key))
            if v is None or v < 0:
                probs.add("meta.rule.params", f'"{key}" must be a number >= 0, got {_short(rule["params"].get(key))}')
            elif key in need:
                params[key] = v
        if "lossless" in rule and not isinstance(rule["lossless"], bool):
            probs.add("meta.rule.lossless", f"must be true or false, got {_short(rule['lossless'])}")
        if len(params) == {"threshold": 1, "typical": 2}.get(rule["name"], 0):
            m.rule, m.params = rule["name"], params
    samp = meta.get("sampling")
    if not m.strict and "sampling" not in meta:
        pass
    elif not isinstance(samp, dict):
        probs.add("meta.sampling", f"must be an object, got {_short(samp)}")
    else:
        temp, top_p = _num(samp.get("temperature")), _num(samp.get("top_p"))
        if temp is None or temp < 0:
            probs.add("meta.sampling.temperature", f"must be a number >= 0, got {_short(samp.get('temperature'))}")
        if not _nonneg_int(samp.get("top_k")):
            probs.add("meta.sampling.top_k", f"must be an integer >= 0, got {_short(samp.get('top_k'))}")
        if top_p is None or not 0 < top_p <= 1:
            probs.add("meta.sampling.top_p", f"must be a number in (0, 1], got {_short(samp.get('top_p'))}")
    if "seed" not in meta:
        if m.strict:
            probs.add("meta.seed", "missing (an integer, or null for an unseeded run)")
    elif not (meta["seed"] is None or _is_int(meta["seed"])):
        probs.add("meta.seed", f"must be an integer or null, got {_short(meta['seed'])}")
    budget = meta.get("max_new_tokens")
    if _is_int(budget) and budget >= 1:
        m.budget = budget
    elif m.needs("max_new_tokens" in meta) or "max_new_tokens" in meta:
        probs.add("meta.max_new_tokens", f"must be an integer >= 1, got {_short(budget)}")
    if "eos_token_ids" in meta:
        eos = meta["eos_token_ids"]
        if isinstance(eos, list) and all(_nonneg_int(t) for t in eos):
            m.eos = set(eos)
        else:
            probs.add("meta.eos_token_ids", "must be an array of integers >= 0")
    if "top_k_logged" in meta:
        if _nonneg_int(meta["top_k_logged"]):
            m.top_k = meta["top_k_logged"]
        else:
            probs.add("meta.top_k_logged", f"must be an integer >= 0, got {_short(meta['top_k_logged'])}")
    if "chat" in meta and not isinstance(meta["chat"], bool):
        probs.add("meta.chat", f"must be true or false, got {_short(meta['chat'])}")
    for key in ("device", "dtype", "created"):
        if key in meta and not isinstance(meta[key], str):
            probs.add(f"meta.{key}", f"must be a string, got {_short(meta[key])}")
    versions = meta.get("versions", {})
    if not (isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values())):
        probs.add("meta.versions", "must be an object of version strings")
    return m


def _check_prompt(prompt: object, probs: _Problems, strict: bool = True) -> int | None:
    if not isinstance(prompt, dict):
        probs.add("prompt", f"must be an object, got {_short(prompt)}")
        return None
    if (strict or "text" in prompt) and not isinstance(prompt.get("text"), str):
        probs.add("prompt.text", f"must be a string, got {_short(prompt.get('text'))}")
    ids = prompt.get("token_ids")
    if not strict and "token_ids" not in prompt:
        return None  # unknown prompt length: the context-length chain is checked from step to step only
    if not (isinstance(ids, list) and all(_nonneg_int(t) for t in ids)):
        probs.add("prompt.token_ids", "must be an array of integers >= 0")
        return None
    return len(ids)


def _check_top(top: object, where: str, m: _Meta, probs: _Problems) -> list[TopEntry] | None:
    """A `top` list: entries {token_id, token, prob}, distinct ids, by decreasing prob, summing to <= 1."""
    if not isinstance(top, list) or not all(
        isinstance(e, dict)
        and _nonneg_int(e.get("token_id"))
        and isinstance(e.get("token"), str)
        and _prob(e.get("prob")) is not None
        for e in top
    ):
        probs.add(where, '"top" must be an array of {token_id, token, prob} with prob in [0, 1]')
        return None
    if not all(_check_bytes(e, where, probs) for e in top):
        return None
    ps = [float(e["prob"]) for e in top]
    if any(a < b - TOL for a, b in pairwise(ps)):
        probs.add(where, '"top" must be sorted by decreasing prob')
        return None
    if len({e["token_id"] for e in top}) != len(top):
        probs.add(where, '"top" lists a token twice')
        return None
    if sum(ps) > 1 + TOL:
        probs.add(where, f'"top" probabilities sum to {sum(ps):.6g}, more than 1')
        return None
    if m.top_k is not None and len(top) > m.top_k:
        probs.add(where, f'"top" has {len(top)} entries, more than meta.top_k_logged = {m.top_k}')
    return top


def _check_raw(entry: dict[str, Any], key: str, token: int, where: str, m: _Meta, probs: _Problems) -> None:
    """The optional untempered distribution: `<key>_raw` a probability, `top_raw` a top list holding it."""
    raw, top = entry.get(f"{key}_raw"), entry.get("top_raw")
    if raw is None and top is None:
        return
    if _prob(raw) is None:
        probs.add(where, f"{key}_raw must be a probability in [0, 1] beside top_raw, got {_short(raw)}")
        return
    checked = _check_top(top, f"{where}, top_raw", m, probs)
    if checked is not None:
        _agrees_with_top(token, float(raw), checked, f"{key}_raw", where, probs)


_HEX = re.compile(r"(?:[0-9a-f]{2}){1,64}")  # a token is at most a few bytes


def _check_bytes(entry: dict[str, Any], where: str, probs: _Problems) -> bool:
    """The optional `bytes` of a token: lowercase hex of 1 to 64 bytes."""
    raw = entry.get("bytes")
    if raw is None:
        return True
    if not (isinstance(raw, str) and _HEX.fullmatch(raw)):
        probs.add(where, f"bytes must be the token's bytes in lowercase hex (1 to 64 bytes), got {_short(raw)}")
        return False
    return True


def _agrees_with_top(token: int, prob: float, top: list[TopEntry], what: str, where: str, probs: _Problems) -> None:
    """The token's own probability must match its `top` entry, or be no larger than the top-k's smallest."""
    for e in top:
        if e["token_id"] == token:
            if abs(float(e["prob"]) - prob) > TOL:
                probs.add(where, f"{what} = {prob:.6g} but its entry in top says {float(e['prob']):.6g}")
            return
    if top and prob > float(top[-1]["prob"]) + TOL:
        probs.add(where, f"{what} = {prob:.6g} is larger than a listed top entry, yet the token is not in top")


def _check_step(step: object, k: int, where: str, m: _Meta, probs: _Problems) -> bool:
    """Structural and rule checks of one step. True when the step is sound enough to build on."""
    if not isinstance(step, dict):
        probs.add(where, f"must be an object, got {_short(step)}")
        return False
    ok = True
    if not (_is_int(step.get("index")) and step["index"] == k):
        probs.add(where, f"index is {_short(step.get('index'))}, expected {k}")
    if m.needs("context_length" in step) or ("context_length" in step and not _nonneg_int(step["context_length"])):
        probs.add(where, f"context_length must be an integer >= 0, got {_short(step.get('context_length'))}")
        ok = False
    draft, verify = step.get("draft"), step.get("verify")
    if not isinstance(draft, list) or not isinstance(verify, list):
        probs.add(where, "draft and verify must be arrays")
        return False
    if len(draft) != len(verify):
        probs.add(where, f"{len(draft)} draft tokens but {len(verify)} verify entries")
        return False
    if m.gamma is not None and len(draft) > m.gamma and "tree" not in step:
        probs.add(where, f"{len(draft)} draft tokens, more than gamma = {m.gamma}")
    n = step.get("n_accepted")
    if not (_is_int(n) and 0 <= n <= len(draft)):
        probs.add(where, f"n_accepted must be an integer in [0, {len(draft)}], got {_short(n)}")
        return False
    first_reject: int | None = None
    decisions_ok = True  # every position readable and its accepted flag in the right state
    for j, (d, v) in enumerate(zip(draft, verify, strict=True)):
        pos = f"{where}, position {j}"
        if not _check_position(d, v, pos, m, probs):
            decisions_ok = False
            continue
        acc = v["accepted"]
        if first_reject is not None:
            if acc is not None:
                probs.add(pos, f"accepted must be null after the first rejection at position {first_reject}")
                decisions_ok = False
            continue
        if acc is None:
            probs.add(pos, "accepted must be true or false up to the first rejection, got null")
            decisions_ok = False
            continue
        if not acc:
            first_reject = j
        _check_rule(m, d, v, acc, pos, probs)
    leading = first_reject if first_reject is not None else len(draft)
    if decisions_ok and n != leading:
        probs.add(where, f"n_accepted is {n} but {leading} leading drafts are marked accepted")
    ok = ok and decisions_ok and n == leading
    if "next" not in step:
        if m.strict:
            probs.add(where, "next is missing (it is null only when generation ended inside the step)")
            return False
        nxt = None  # a minimal trace may not know the evaluation model's own token
    else:
        nxt = step["next"]
    if nxt is not None:
        if not (
            isinstance(nxt, dict)
            and _nonneg_int(nxt.get("token_id"))
            and isinstance(nxt.get("token"), str)
            and nxt.get("kind") in NEXT_KINDS
        ):
            probs.add(where, "next must be null or an object {token_id, token, kind: correction|bonus, top}")
            return False
        _check_bytes(nxt, f"{where}, next", probs)
        _check_raw(nxt, "p", nxt["token_id"], f"{where}, next", m, probs)
        if "source" in nxt and not isinstance(nxt["source"], str):
            probs.add(f"{where}, next", f"source must be a string, got {_short(nxt['source'])}")
        want = "bonus" if n == len(draft) else "correction"
        if nxt["kind"] != want:
            probs.add(
                where, f"next.kind is {nxt['kind']!r} but should be {want!r} ({n} of {len(draft)} drafts accepted)"
            )
        top = _check_top(nxt.get("top"), f"{where}, next", m, probs) if m.needs("top" in nxt) or "top" in nxt else None
        if "prob" in nxt:
            prob = _prob(nxt["prob"])
            if prob is None:
                probs.add(f"{where}, next", f"prob must be a probability in [0, 1], got {_short(nxt['prob'])}")
            elif top is not None:
                _agrees_with_top(nxt["token_id"], prob, top, "prob", f"{where}, next", probs)
        if m.rule == "greedy" and want == "correction" and decisions_ok:
            best = verify[n].get("top") or []  # p at the rejected position: the greedy correction is its argmax
            if (
                best
                and best[0]["token_id"] != nxt["token_id"]
                and float(best[0]["prob"]) > _p_of(nxt["token_id"], best) + TOL
            ):
                probs.add(
                    where, f"under greedy the correction must be the target's argmax, token {best[0]['token_id']}"
                )
    if "tree" in step:
        ok = _check_tree(step, where, m, probs) and ok
    if "no_draft" in step and (step["no_draft"] not in NO_DRAFT_REASONS or step["draft"]):
        probs.add(where, f"no_draft must be one of {', '.join(NO_DRAFT_REASONS)}, and only on a step with no drafts")
    timing = step.get("timing_ms")
    if not m.strict and timing is None:
        pass  # no timings: the statistics page says there is no cost analysis
    elif not (
        isinstance(timing, dict)
        and "draft" in timing
        and "verify" in timing
        and all((t := _num(x)) is not None and t >= 0 for x in timing.values())
    ):
        probs.add(where, "timing_ms must be an object with draft and verify milliseconds (numbers >= 0)")
    return ok


def _check_tree(step: dict[str, Any], where: str, m: _Meta, probs: _Problems) -> bool:
    """step.tree (version 2): parents before children, the path a chain of accepted nodes, siblings
    tested in order (rejected ones, at most one accepted, then untested), draft/verify its main line,
    each decision the rule's. True when the tree is sound."""
    tree = step["tree"]
    w = f"{where}, tree"
    if not (
        isinstance(tree, dict)
        and isinstance(tree.get("nodes"), list)
        and isinstance(tree.get("path"), list)
        and isinstance(tree.get("main"), list)
        and isinstance(tree.get("shape"), str)
    ):
        probs.add(w, "must be an object {shape, nodes, path, main}")
        return False
    nodes, path, main = tree["nodes"], tree["path"], tree["main"]
    n = len(nodes)
    depth: list[int] = []
    for j, node in enumerate(nodes):
        at = f"{w}, node {j}"
        if not (
            isinstance(node, dict)
            and _nonneg_int(node.get("token_id"))
            and isinstance(node.get("token"), str)
            and _is_int(node.get("parent"))
            and -1 <= node["parent"] < j
            and node.get("accepted") in (True, False, None)
        ):
            probs.add(at, "needs token_id, token, parent (-1 or an earlier node) and accepted (true, false or null)")
            return False
        depth.append(1 if node["parent"] < 0 else depth[node["parent"]] + 1)
        if node.get("depth") != depth[j]:
            probs.add(at, f"depth is {_short(node.get('depth'))}, but its parents make it {depth[j]}")
        for key in ("q", "p", "r", "accept_prob", "p_test", "q_test", "cutoff"):
            if node.get(key) is not None and _prob(node[key]) is None:
                probs.add(at, f"{key} must be null or a probability in [0, 1], got {_short(node[key])}")
                return False
        if (
            m.rule == "sampling"
            and node["accepted"] is not None
            and node.get("r") is not None
            and node.get("accept_prob") is not None
            and (float(node["r"]) < float(node["accept_prob"])) != node["accepted"]
        ):
            probs.add(
                at,
                f"accepted is {str(node['accepted']).lower()} but r = {float(node['r']):.6g} against accept_prob = {float(node['accept_prob']):.6g}",
            )
    if not all(_is_int(j) and 0 <= j < n for j in path + main):
        probs.add(w, f"path and main must list node indices in [0, {n})")
        return False
    for i, j in enumerate(path):
        if nodes[j]["parent"] != (path[i - 1] if i else -1) or nodes[j]["accepted"] is not True:
            probs.add(w, f"path node {j} must be an accepted child of the node before it on the path")
            return False
    for parent in [-1, *range(n)]:
        states = [nodes[j]["accepted"] for j in range(n) if nodes[j]["parent"] == parent]
        tested = [s for s in states if s is not None]
        if states[: len(tested)] != tested or tested.count(True) > (1 if tested[-1:] == [True] else 0):
            probs.add(
                w,
                f"the children of node {parent} must be tested in order: rejected ones, then at most one accepted, then untested",
            )
            return False
    # only the root's and the path's children can have been tested; where the path ends, a child
    # left untested (or accepted) would mean the walk stopped early
    reached = {-1, *path}
    end = path[-1] if path else -1
    for j, node in enumerate(nodes):
        if node["accepted"] is not None and node["parent"] not in reached:
            probs.add(w, f"node {j} is marked tested, but its parent {node['parent']} is not on the accepted path")
            return False
        if node["parent"] == end and node["accepted"] is not False:
            probs.add(w, f"node {j} hangs from the path's end, so it must have been tested and rejected")
            return False
    if len(path) != step["n_accepted"] or main[: len(path)] != path:
        probs.add(
            w, f"the path has {len(path)} nodes, n_accepted is {step['n_accepted']}, and main must start with the path"
        )
        return False
    if len(main) != len(step["draft"]) or any(
        isinstance(d, dict) and d.get("token_id") != nodes[j]["token_id"]
        for d, j in zip(step["draft"], main, strict=False)
    ):
        probs.add(w, "draft must show the main line's tokens, in order")
        return False
    # the main line's draft and verify entries are its nodes, seen as a chain: the same numbers
    for i, (d, v, j) in enumerate(zip(step["draft"], step["verify"], main, strict=False)):
        if not (isinstance(d, dict) and isinstance(v, dict)):
            continue  # reported with the positions
        for key, entry in (("q", d), ("p", v), ("r", v), ("accept_prob", v), ("accepted", v)):
            mine, theirs = nodes[j].get(key), entry.get(key)
            if mine is None or theirs is None:
                continue  # not logged on one side (a minimal trace)
            same = mine == theirs if key == "accepted" else abs(float(mine) - float(theirs)) <= 1e-6
            if not same:
                probs.add(
                    w,
                    f"node {j} is draft position {i + 1}, but its {key} is {_short(mine)} there and {_short(theirs)} here",
                )
                return False
    return True


def _p_of(token: int, top: list[TopEntry]) -> float:
    return next((float(e["prob"]) for e in top if e["token_id"] == token), 0.0)


def _check_position(d: object, v: object, pos: str, m: _Meta, probs: _Problems) -> bool:
    """One draft entry and its verify entry, structurally. True when both are sound."""
    if not (isinstance(d, dict) and _nonneg_int(d.get("token_id")) and isinstance(d.get("token"), str)):
        probs.add(pos, "a draft entry needs an integer token_id >= 0 and a string token")
        return False
    if not isinstance(v, dict):
        probs.add(pos, f"the verify entry must be an object, got {_short(v)}")
        return False
    ok = _check_bytes(d, pos, probs)
    for key, entry in (("q", d), ("p", v)):
        _check_raw(entry, key, d["token_id"], pos, m, probs)
        if not m.strict and entry.get(key) is None:
            continue  # not logged (absent or null): allowed in a minimal trace
        if _prob(entry.get(key)) is None:
            probs.add(pos, f"{key} must be a probability in [0, 1], got {_short(entry.get(key))}")
            ok = False
    for key in ("accept_prob", "r", "cutoff"):
        if v.get(key) is not None and _prob(v[key]) is None:
            probs.add(pos, f"{key} must be null or a probability in [0, 1], got {_short(v[key])}")
            ok = False
    ratio = v.get("ratio")
    if ratio is not None and ((f := _num(ratio)) is None or f < 0):
        probs.add(pos, f"ratio must be null or a finite number >= 0, got {_short(ratio)}")
        ok = False
    if "accepted" not in v or not (v["accepted"] is None or isinstance(v["accepted"], bool)):
        probs.add(pos, f"accepted must be true, false or null, got {_short(v.get('accepted'))}")
        ok = False
    for entry, what, name in ((d, "q", "draft"), (v, "p", "verify")):
        if not m.strict and entry.get("top") is None:
            continue
        top = _check_top(entry.get("top"), f"{pos} ({name} top)", m, probs)
        if top is None:
            ok = False
        elif ok and entry.get(what) is not None:
            _agrees_with_top(d["token_id"], float(entry[what]), top, what, pos, probs)
    return ok


def _check_rule(m: _Meta, d: dict[str, Any], v: dict[str, Any], acc: bool, pos: str, probs: _Problems) -> None:
    """Is the decision the one the rule makes from the logged numbers? (Entries are sound here.)

    In a minimal trace a check runs only when the numbers it needs were logged.
    """
    if v.get("p") is None or d.get("q") is None:
        if not m.strict:
            _check_partial_rule(m, d, v, acc, pos, probs)
        return  # strict mode has reported the missing number already
    p, q = float(v["p"]), float(d["q"])
    said = "true" if acc else "false"
    if m.rule == "sampling" and v.get("p_test") is not None and v.get("q_test") is not None:
        p, q = float(v["p_test"]), float(v["q_test"])  # a tree's later sibling: tested without the earlier ones
    if m.rule == "sampling":
        a, r = v.get("accept_prob"), v.get("r")
        if (a is None or r is None) and m.strict:
            probs.add(pos, "the sampling rule logs accept_prob and r at every decided position")
            return
        want = min(1.0, p / q) if q > 0 else float(p > 0)
        if a is not None and abs(float(a) - want) > TOL:
            probs.add(pos, f"accept_prob {float(a):.6g} is not min(1, p/q) = {want:.6g}")
        if r is None:
            return
        a, r = (want if a is None else float(a)), float(r)
        if (r < a) != acc:
            probs.add(pos, f"accepted is {said} but r = {r:.6g} {'<' if r < a else '>='} accept_prob = {a:.6g}")
    elif m.rule == "threshold" and m.params is not None:
        tau = m.params["tau"]
        ratio = _num(v.get("ratio"))
        if ratio is None:
            ratio = p / q if q > 0 else math.inf
        elif q > 0 and abs(ratio - p / q) > TOL * max(1.0, ratio):
            probs.add(pos, f"ratio {ratio:.6g} is not p/q = {p / q:.6g}")
        if abs(ratio - tau) > 1e-6 * max(1.0, tau) and (ratio >= tau) != acc:
            probs.add(pos, f"accepted is {said} but p/q = {ratio:.6g} {'>=' if ratio >= tau else '<'} tau = {tau:.6g}")
    elif m.rule == "typical" and m.params is not None:
        cutoff = v.get("cutoff")
        if cutoff is None:
            return  # without the cutoff the decision cannot be re-checked (it needs all of p)
        cutoff = float(cutoff)
        if cutoff > m.params["epsilon"] + TOL:
            probs.add(pos, f"cutoff {cutoff:.6g} is above epsilon = {m.params['epsilon']:.6g}")
        if abs(p - cutoff) > 1e-9 and (p > cutoff) != acc:
            probs.add(pos, f"accepted is {said} but p = {p:.6g} {'>' if p > cutoff else '<='} cutoff = {cutoff:.6g}")
    elif m.rule == "greedy":
        top = v.get("top")
        if not top:
            return
        best = top[0]
        if acc and p < float(best["prob"]) - TOL:
            probs.add(pos, f"accepted under greedy but p = {p:.6g} is below the argmax's {float(best['prob']):.6g}")
        runner_up = float(top[1]["prob"]) if len(top) > 1 else 0.0
        if not acc and d["token_id"] == best["token_id"] and float(best["prob"]) > runner_up + TOL:
            probs.add(pos, "rejected under greedy although the draft is the target's argmax")


def _check_partial_rule(m: _Meta, d: dict[str, Any], v: dict[str, Any], acc: bool, pos: str, probs: _Problems) -> None:
    """A minimal trace without p or q: only a logged r against a logged accept_prob can be checked."""
    said = "true" if acc else "false"
    a, r = v.get("accept_prob"), v.get("r")
    if m.rule == "sampling" and a is not None and r is not None and (float(r) < float(a)) != acc:
        rel = "<" if float(r) < float(a) else ">="
        probs.add(pos, f"accepted is {said} but r = {float(r):.6g} {rel} accept_prob = {float(a):.6g}")


def _check_output(out: object, steps: list[Step], complete: bool, m: _Meta, probs: _Problems) -> None:
    if out is None:
        probs.add("output", "missing (a run that stopped early still has one, with stop_reason stopped)")
        return
    if not isinstance(out, dict):
        probs.add("output", f"must be an object, got {_short(out)}")
        return
    ids = out.get("token_ids")
    if not (isinstance(ids, list) and all(_nonneg_int(t) for t in ids)):
        probs.add("output.token_ids", "must be an array of integers >= 0")
        return
    reason = out.get("stop_reason")
    if reason not in STOP_REASONS:
        probs.add("output.stop_reason", f"must be one of {', '.join(STOP_REASONS)}, got {_short(reason)}")
    elif reason == "eos" and m.eos is not None and not (ids and ids[-1] in m.eos):
        probs.add("output.stop_reason", "is eos but the output does not end with an EOS token")
    elif reason == "max_new_tokens" and m.budget is not None and len(ids) != m.budget:
        probs.add("output.stop_reason", f"is max_new_tokens but the output has {len(ids)} of {m.budget} tokens")
    if not isinstance(out.get("text"), str):
        probs.add("output.text", f"must be a string, got {_short(out.get('text'))}")
    if "recovered" in out and not isinstance(out["recovered"], bool):
        probs.add("output.recovered", f"must be true or false, got {_short(out['recovered'])}")
    if m.budget is not None and len(ids) > m.budget:
        probs.add("output.token_ids", f"{len(ids)} tokens, more than max_new_tokens = {m.budget}")
    if complete and not probs.full:
        want = output_ids(steps, m.eos or (), m.budget)
        if not m.strict and m.budget is None:
            want = want[: len(ids)]  # a minimal trace may have been cut by a budget it does not record
        if ids != want:
            at = next((i for i, (a, b) in enumerate(zip(ids, want, strict=False)) if a != b), min(len(ids), len(want)))
            probs.add(
                "output.token_ids",
                f"differ from the steps' accepted drafts + next tokens at token {at} "
                f"({len(ids)} tokens vs {len(want)} reconstructed)",
            )


# ---------------------------------------------------------------- summaries


def _decided(step: Step, eos: set[int]) -> int:
    """How many of a step's drafts count in statistics: all of them, unless an accepted draft was an
    end-of-sequence token — the drafts after it never reached the output, whatever the rule said."""
    for j, d in enumerate(step["draft"][: step["n_accepted"]]):
        if d["token_id"] in eos:
            return j + 1
    return len(step["draft"])


def summarize(trace: Trace) -> dict[str, Any]:
    """Acceptance rate, accepted lengths, tokens per step, per-position acceptance, time split.

    Only drafts that could reach the output count: after an accepted end-of-sequence draft, the
    rest of the step's drafts are left out, so mean accepted never exceeds tokens per step.
    A rate with nothing to count (no drafts, no decisions) is None, never 0: `undefined_words`
    says why in words. Expects a trace that validate() accepts.
    """
    steps = trace["steps"]
    eos = set(trace.get("meta", {}).get("eos_token_ids") or [])
    decided = [_decided(s, eos) for s in steps]  # drafts per step that count (none after an accepted EOS)
    gamma = max((len(s["draft"]) for s in steps), default=0)
    drafted = sum(decided)
    accepted = sum(min(s["n_accepted"], k) for s, k in zip(steps, decided, strict=True))
    rejections = sum(1 for s, k in zip(steps, decided, strict=True) if s["n_accepted"] < k)
    out = trace.get("output") or finish(dict(trace), "stopped")["output"]  # type: ignore[arg-type]
    per_pos = []
    for j in range(gamma):
        seen = [
            s["verify"][j]["accepted"]
            for s, k in zip(steps, decided, strict=True)
            if j < min(len(s["verify"]), k) and s["verify"][j]["accepted"] is not None
        ]
        per_pos.append(sum(seen) / len(seen) if seen else None)
    draft_ms = sum(s.get("timing_ms", {}).get("draft", 0.0) for s in steps if s.get("timing_ms"))
    verify_ms = sum(s.get("timing_ms", {}).get("verify", 0.0) for s in steps if s.get("timing_ms"))
    n_steps = len(steps)
    with_draft = sum(1 for s in steps if s["draft"])
    return {
        "steps": n_steps,
        "tokens": len(out["token_ids"]),
        "tokens_per_step": len(out["token_ids"]) / n_steps if n_steps else 0.0,
        "drafted": drafted,
        "accepted": accepted,
        # share of drafted tokens that ended up in the output; None (undefined, not 0) with no drafts
        "acceptance_rate": accepted / drafted if drafted else None,
        # per-decision acceptance probability: accepted / (accepted + rejections); the α of the theory
        "alpha": accepted / (accepted + rejections) if accepted + rejections else None,
        "rejections": rejections,
        # one rule: steps that drafted nothing made no acceptance decision and are left out of
        # mean accepted, the accepted-length histogram and per-position acceptance
        "mean_accepted": accepted / with_draft if with_draft else None,
        "steps_without_draft": n_steps - with_draft,
        "no_draft_reasons": dict(Counter(s.get("no_draft", "unrecorded") for s in steps if not s["draft"])),
        "accepted_length_counts": [
            sum(1 for s, k in zip(steps, decided, strict=True) if s["draft"] and min(s["n_accepted"], k) == n)
            for n in range(gamma + 1)
        ],
        "per_position_acceptance": per_pos,
        "draft_ms": draft_ms,
        "verify_ms": verify_ms,
        "draft_share": draft_ms / (draft_ms + verify_ms) if draft_ms + verify_ms else None,
        "stop_reason": out.get("stop_reason"),
    }
