"""The trace schema: the format's version and limits, its types (TypedDicts), building a trace,
and token bytes. Described for people in docs/TRACE_FORMAT.md, as a JSON Schema in
docs/trace.schema.json."""

from __future__ import annotations

import codecs
import math
import platform
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, NotRequired, TypedDict

FORMAT = "specviz-trace"
VERSION = 2  # 2: steps may carry a draft tree (step.tree); 1 reads as single-branch trees
# each acceptance rule's parameters: a copy of specviz.core.rules.KINDS that keeps this format free of torch
# (tests/trace/test_trace.py holds the two equal)
RULE_PARAMS: dict[str, tuple[str, ...]] = {
    "sampling": (),
    "greedy": (),
    "threshold": ("tau",),
    "typical": ("epsilon", "delta"),
}
RULE_NAMES = tuple(RULE_PARAMS)
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
    copied: NotRequired[int]  # a prompt-lookup fallback's copy after an n-gram of this length (q one-hot)


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
    copied: NotRequired[int]  # a copy from earlier text hung beside the model's drafts: the n-gram's length
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


def rule_of(trace: Trace, default: str = "") -> tuple[str, dict[str, Any]]:
    """The trace's acceptance rule: (name, params); `default` as the name when the trace does not say
    (a minimal trace). The one reader of meta.rule every page and exercise uses."""
    rule = (trace.get("meta") or {}).get("rule")
    if not isinstance(rule, dict):
        return default, {}
    params = rule.get("params")
    return str(rule.get("name") or default), dict(params) if isinstance(params, dict) else {}


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
    pending = b""
    if text is None:  # rebuilt from the logged tokens; bytes first, so a split character is whole again
        by_id = _token_texts(trace)
        text, pending = whole_text(b"".join(by_id.get(t, b"") for t in ids))
    trace["output"] = {"token_ids": ids, "text": text, "stop_reason": stop_reason}
    if pending:
        trace["output"]["pending_bytes"] = pending.hex()
    return trace


def whole_text(b: bytes) -> tuple[str, bytes]:
    """UTF-8 bytes as (the text of their whole characters, the incomplete character's bytes at the end).

    A run cut after a token that ends inside a character (half an emoji) holds those bytes back
    instead of showing U+FFFD, so the cut text is a prefix of the full one. Bytes that can never
    become UTF-8, anywhere, still decode to U+FFFD.
    """
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    text = dec.decode(b, final=False)
    return text, dec.getstate()[0]


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
