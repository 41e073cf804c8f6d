"""The trace format: schema, reading and writing, validation and summaries. Pure Python, no torch.

A trace is a JSON object (also .json.gz, and JSONL: a header line, one line per step, then an
output line, so an interrupted run still leaves a readable file). docs/TRACE_FORMAT.md describes
every field; docs/trace.schema.json is the JSON Schema. Loading treats every file as hostile.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import platform
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Literal, TypedDict

__all__ = [
    "FORMAT",
    "VERSION",
    "JsonlWriter",
    "Step",
    "TopEntry",
    "Trace",
    "TraceError",
    "dump",
    "dumps",
    "finish",
    "load",
    "loads",
    "new_trace",
    "output_ids",
    "summarize",
    "validate",
]

FORMAT = "specviz-trace"
VERSION = 1
RULE_NAMES = ("sampling", "greedy", "threshold", "typical")
STOP_REASONS = ("eos", "max_new_tokens", "stopped")
MAX_BYTES = 50 * 2**20  # an upload or file larger than this is refused before parsing
MAX_UNZIPPED = 200 * 2**20  # gzip bombs stop here
MAX_STEPS = 100_000
MAX_PROBLEMS = 20
TOL = 1e-4


class TopEntry(TypedDict):
    token_id: int
    token: str
    prob: float


class DraftEntry(TypedDict):
    token_id: int
    token: str
    q: float
    top: list[TopEntry]


class VerifyEntry(TypedDict):
    p: float
    accept_prob: float | None  # sampling: min(1, p/q)
    r: float | None  # sampling: the uniform draw compared with accept_prob
    ratio: float | None  # threshold: p/q, compared with tau
    cutoff: float | None  # typical: min(epsilon, delta * exp(-H(p)))
    accepted: bool | None  # None after the first rejection: never evaluated
    top: list[TopEntry]


class NextToken(TypedDict):
    token_id: int
    token: str
    kind: Literal["correction", "bonus"]
    source: str  # residual | p | argmax: the distribution it was drawn from
    prob: float
    top: list[TopEntry]


class Step(TypedDict):
    index: int
    context_length: int
    draft: list[DraftEntry]
    verify: list[VerifyEntry]
    n_accepted: int
    next: NextToken | None
    timing_ms: dict[str, float]


class Trace(TypedDict, total=False):
    format: str
    version: int
    meta: dict[str, Any]
    prompt: dict[str, Any]
    steps: list[Step]
    output: dict[str, Any]


class TraceError(ValueError):
    """A trace that cannot be read; the message says what is wrong and where."""


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
    if text is None:
        by_id = _token_texts(trace)
        text = "".join(by_id.get(t, "") for t in ids)
    trace["output"] = {"token_ids": ids, "text": text, "stop_reason": stop_reason}
    return trace


def _token_texts(trace: Trace) -> dict[int, str]:
    out: dict[int, str] = {}
    for step in trace["steps"]:
        for d in step["draft"]:
            out[d["token_id"]] = d["token"]
        if step.get("next"):
            out[step["next"]["token_id"]] = step["next"]["token"]
    return out


# ---------------------------------------------------------------- writing


def dumps(trace: Trace) -> str:
    return json.dumps(trace, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dump(trace: Trace, path: str | Path) -> None:
    """Write by suffix: .json, .json.gz, .jsonl (header, steps, output)."""
    path = Path(path)
    name = path.name
    if name.endswith(".jsonl"):
        with JsonlWriter(path, trace) as w:
            for step in trace["steps"]:
                w.step(step)
            if "output" in trace:
                w.output(trace["output"])
        return
    data = dumps(trace).encode()
    if name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


class JsonlWriter:
    """Streams a trace: the header first, each step as it comes (flushed), the output last."""

    def __init__(self, path: str | Path, trace: Trace) -> None:
        self._f: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        head = {k: v for k, v in trace.items() if k not in ("steps", "output")}
        self._line(head)

    def _line(self, obj: object) -> None:
        self._f.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
        self._f.flush()

    def step(self, step: Step) -> None:
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


def _no_constants(name: str) -> None:
    raise TraceError(f"the file contains {name}, which is not a number JSON allows; probabilities must be finite")


def _parse(text: str, where: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise TraceError(f"{where}: JSON nested too deeply to be a trace") from None
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None


def loads(data: bytes, name: str = "trace", max_bytes: int = MAX_BYTES) -> Trace:
    """Parse bytes (json, gzip-compressed json, or jsonl) into a trace dict.

    Raises TraceError with a readable message for anything that is not a trace; never anything
    else. Semantic checks are validate()'s job; this only guarantees the top-level shape.
    """
    if len(data) > max_bytes:
        raise TraceError(f"{name} is {len(data) / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
    if not data.strip():
        raise TraceError(f"{name} is empty")
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, name, max(MAX_UNZIPPED, max_bytes))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{name} is not UTF-8 text (bad byte at offset {exc.start}); is it a trace file?") from None
    text = text.lstrip("\ufeff")
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        raise TraceError(f"{name} does not start with a JSON object; a trace is a JSON object or JSONL lines")
    lines = [ln for ln in stripped.splitlines() if ln.strip()]
    first = _parse(lines[0], f"{name} line 1") if len(lines) > 1 else None
    if isinstance(first, dict) and "steps" not in first and first.get("format") == FORMAT:
        trace = _from_jsonl(first, lines[1:], name)
    else:
        trace = _parse(text, name)
    if not isinstance(trace, dict):
        raise TraceError(f"{name}: the top level must be a JSON object")
    if trace.get("format") != FORMAT:
        raise TraceError(
            f'{name}: not a specviz trace ("format" must be "{FORMAT}", got {_short(trace.get("format"))})'
        )
    version = trace.get("version")
    if version != VERSION:
        raise TraceError(
            f"{name}: trace version {_short(version)} is not supported; this specviz reads version {VERSION}"
        )
    for key, typ in (("meta", dict), ("prompt", dict), ("steps", list)):
        if not isinstance(trace.get(key), typ):
            raise TraceError(
                f'{name}: "{key}" is missing or is not a JSON {typ.__name__.replace("dict", "object").replace("list", "array")}'
            )
    if len(trace["steps"]) > MAX_STEPS:
        raise TraceError(f"{name}: {len(trace['steps'])} steps; the limit is {MAX_STEPS}")
    return trace  # type: ignore[return-value]


def _from_jsonl(head: dict[str, Any], lines: list[str], name: str) -> dict[str, Any]:
    trace = dict(head)
    steps: list[Any] = []
    output = None
    for n, line in enumerate(lines, start=2):
        if len(steps) > MAX_STEPS:
            raise TraceError(f"{name}: more than {MAX_STEPS} steps")
        obj = _parse(line, f"{name} line {n}")
        if isinstance(obj, dict) and set(obj) == {"output"}:
            output = obj["output"]
        else:
            steps.append(obj)
    trace["steps"] = steps
    if output is not None:
        trace["output"] = output
    return trace


def _gunzip(data: bytes, name: str, cap: int) -> bytes:
    out = io.BytesIO()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)
                if out.tell() > cap:
                    raise TraceError(f"{name} decompresses to more than {cap / 2**20:.0f} MB; refusing it")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TraceError(f"{name} looks gzip-compressed but is damaged ({exc})") from None
    return out.getvalue()


def load(path: str | Path, max_bytes: int = MAX_BYTES) -> Trace:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise TraceError(f"{path.name} is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise TraceError(f"cannot read {path}: {exc.strerror or exc}") from None
    return loads(data, path.name, max_bytes)


def _short(value: object) -> str:
    s = json.dumps(value) if not isinstance(value, str) else repr(value)
    return s if len(s) <= 40 else s[:37] + "..."


# ---------------------------------------------------------------- validation


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_prob(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and -TOL <= x <= 1 + TOL


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


def validate(trace: object, limit: int = MAX_PROBLEMS) -> list[str]:
    """Check schema and semantics. Returns problems, one line each (empty list: valid)."""
    probs = _Problems(limit)
    if not isinstance(trace, dict):
        return ["the trace must be a JSON object"]
    if trace.get("format") != FORMAT:
        probs.add("", f'"format" must be "{FORMAT}"')
    if trace.get("version") != VERSION:
        probs.add("", f'"version" must be {VERSION}, got {_short(trace.get("version"))}')
    meta = trace.get("meta")
    rule_name, params, gamma, eos, budget = _check_meta(meta, probs)
    prompt = trace.get("prompt")
    prompt_len = None
    if not isinstance(prompt, dict):
        probs.add("prompt", "missing or not an object")
    else:
        if not isinstance(prompt.get("text"), str):
            probs.add("prompt.text", "must be a string")
        ids = prompt.get("token_ids")
        if isinstance(ids, list) and all(_is_int(t) and t >= 0 for t in ids):
            prompt_len = len(ids)
        else:
            probs.add("prompt.token_ids", "must be a list of non-negative integers")
    steps = trace.get("steps")
    if not isinstance(steps, list):
        probs.add("steps", "missing or not a list")
        return probs.items
    good_steps: list[Step] = []
    expected_ctx = prompt_len
    ended = False
    for k, step in enumerate(steps):
        if probs.full:
            break
        where = f"step {k}"
        if ended:
            probs.add(where, "comes after a step that ended generation (next is null)")
        if not _check_step(step, k, where, rule_name, params, gamma, probs):
            expected_ctx = None
            continue
        good_steps.append(step)
        if expected_ctx is not None and step["context_length"] != expected_ctx:
            probs.add(
                where,
                f"context_length is {step['context_length']}, expected {expected_ctx} (previous + n_accepted + 1)",
            )
        expected_ctx = step["context_length"] + step["n_accepted"] + 1
        ended = step["next"] is None
    _check_output(trace.get("output"), good_steps, len(good_steps) == len(steps), eos, budget, probs)
    return probs.items


def _check_meta(meta: object, probs: _Problems) -> tuple[str | None, dict[str, Any], int | None, list[int], int | None]:
    if not isinstance(meta, dict):
        probs.add("meta", "missing or not an object")
        return None, {}, None, [], None
    for role in ("target", "draft"):
        m = meta.get(role)
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            probs.add(f"meta.{role}", 'must be an object with a string "name"')
    gamma = meta.get("gamma")
    if not (_is_int(gamma) and gamma >= 1):
        probs.add("meta.gamma", f"must be an integer >= 1, got {_short(gamma)}")
        gamma = None
    rule = meta.get("rule")
    rule_name, params = None, {}
    if not isinstance(rule, dict) or rule.get("name") not in RULE_NAMES:
        probs.add("meta.rule", f'must be an object whose "name" is one of {", ".join(RULE_NAMES)}')
    else:
        rule_name = rule["name"]
        params = rule.get("params") if isinstance(rule.get("params"), dict) else {}
        need = {"threshold": ("tau",), "typical": ("epsilon", "delta")}.get(rule_name, ())
        for key in need:
            v = params.get(key)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)):
                probs.add("meta.rule.params", f'rule {rule_name} needs a numeric "{key}"')
                rule_name = None
    samp = meta.get("sampling")
    if not isinstance(samp, dict) or not isinstance(samp.get("temperature"), (int, float)):
        probs.add("meta.sampling", 'must be an object with a numeric "temperature"')
    eos = meta.get("eos_token_ids", [])
    if not (isinstance(eos, list) and all(_is_int(t) for t in eos)):
        probs.add("meta.eos_token_ids", "must be a list of integers")
        eos = []
    budget = meta.get("max_new_tokens")
    if budget is not None and not (_is_int(budget) and budget >= 1):
        probs.add("meta.max_new_tokens", f"must be an integer >= 1, got {_short(budget)}")
        budget = None
    return rule_name, params, gamma, eos, budget


def _check_top(top: object, where: str, probs: _Problems) -> bool:
    if top is None:
        return True
    if not isinstance(top, list) or not all(
        isinstance(e, dict)
        and _is_int(e.get("token_id"))
        and isinstance(e.get("token"), str)
        and _is_prob(e.get("prob"))
        for e in top
    ):
        probs.add(where, '"top" must be a list of {token_id, token, prob} with prob in [0, 1]')
        return False
    return True


def _check_step(
    step: object, k: int, where: str, rule: str | None, params: dict[str, Any], gamma: int | None, probs: _Problems
) -> bool:
    """Structural and rule checks of one step. True when the step is sound enough to build on."""
    if not isinstance(step, dict):
        probs.add(where, "must be an object")
        return False
    if step.get("index") != k:
        probs.add(where, f"index is {_short(step.get('index'))}, expected {k}")
    ok = True
    if not (_is_int(step.get("context_length")) and step["context_length"] >= 0):
        probs.add(where, "context_length must be a non-negative integer")
        ok = False
    draft, verify = step.get("draft"), step.get("verify")
    if not isinstance(draft, list) or not isinstance(verify, list):
        probs.add(where, "draft and verify must be lists")
        return False
    if len(draft) != len(verify):
        probs.add(where, f"{len(draft)} draft tokens but {len(verify)} verify entries")
        return False
    if gamma is not None and len(draft) > gamma:
        probs.add(where, f"{len(draft)} draft tokens, more than gamma = {gamma}")
    n = step.get("n_accepted")
    if not (_is_int(n) and 0 <= n <= len(draft)):
        probs.add(where, f"n_accepted must be an integer in [0, {len(draft)}], got {_short(n)}")
        return False
    first_reject: int | None = None
    for j, (d, v) in enumerate(zip(draft, verify, strict=True)):
        pos = f"{where}, position {j}"
        if (
            not isinstance(d, dict)
            or not _is_int(d.get("token_id"))
            or d["token_id"] < 0
            or not isinstance(d.get("token"), str)
        ):
            probs.add(pos, "draft entry needs an integer token_id >= 0 and a string token")
            ok = False
            continue
        if "q" in d and d["q"] is not None and not _is_prob(d["q"]):
            probs.add(pos, f"q must be a probability in [0, 1], got {_short(d['q'])}")
            ok = False
        _check_top(d.get("top"), pos + " (draft)", probs)
        if not isinstance(v, dict):
            probs.add(pos, "verify entry must be an object")
            ok = False
            continue
        for key in ("p", "accept_prob", "r", "ratio", "cutoff"):
            val = v.get(key)
            if val is None:
                continue
            if key == "ratio":
                good = isinstance(val, (int, float)) and not isinstance(val, bool) and math.isfinite(val) and val >= 0
            else:
                good = _is_prob(val)
            if not good:
                probs.add(
                    pos,
                    f"{key} must be {'a finite ratio >= 0' if key == 'ratio' else 'a probability in [0, 1]'}, got {_short(val)}",
                )
                ok = False
        _check_top(v.get("top"), pos + " (verify)", probs)
        acc = v.get("accepted")
        if first_reject is not None:
            if acc is not None:
                probs.add(pos, f"accepted must be null after the first rejection at position {first_reject}")
            continue
        if not isinstance(acc, bool):
            probs.add(pos, f"accepted must be true or false up to the first rejection, got {_short(acc)}")
            ok = False
            continue
        if not acc:
            first_reject = j
        if ok:
            _check_rule(rule, params, d, v, acc, pos, probs)
    leading = first_reject if first_reject is not None else len(draft)
    if ok and n != leading:
        probs.add(where, f"n_accepted is {n} but {leading} leading drafts are marked accepted")
    nxt = step.get("next")
    if nxt is not None:
        if (
            not isinstance(nxt, dict)
            or not _is_int(nxt.get("token_id"))
            or nxt["token_id"] < 0
            or nxt.get("kind") not in ("correction", "bonus")
        ):
            probs.add(where, "next must be null or {token_id, token, kind: correction|bonus}")
            return False
        want = "bonus" if n == len(draft) else "correction"
        if nxt["kind"] != want:
            probs.add(
                where, f"next.kind is {nxt['kind']!r} but should be {want!r} ({n} of {len(draft)} drafts accepted)"
            )
        _check_top(nxt.get("top"), where + " (next)", probs)
    timing = step.get("timing_ms")
    if timing is not None and not (
        isinstance(timing, dict)
        and all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t >= 0
            for t in timing.values()
        )
    ):
        probs.add(where, "timing_ms must map names to finite non-negative milliseconds")
    return ok


def _check_rule(
    rule: str | None,
    params: dict[str, Any],
    d: dict[str, Any],
    v: dict[str, Any],
    acc: bool,
    pos: str,
    probs: _Problems,
) -> None:
    """Is the decision the one the rule makes from the logged numbers?"""
    p, q = v.get("p"), d.get("q")
    if rule == "sampling":
        a, r = v.get("accept_prob"), v.get("r")
        if (
            p is not None
            and q is not None
            and a is not None
            and q > 0
            and abs(min(1.0, p / q) - a) > TOL * max(1.0, a) * 10
        ):
            probs.add(pos, f"accept_prob {a:.6g} is not min(1, p/q) = {min(1.0, p / q):.6g}")
        if a is not None and r is not None and abs(r - a) > 1e-9 and (r < a) != acc:
            probs.add(
                pos, f"accepted is {str(acc).lower()} but r = {r:.6g} {'<' if r < a else '>='} accept_prob = {a:.6g}"
            )
    elif rule == "threshold":
        ratio = v.get("ratio")
        if ratio is None and p is not None and q:
            ratio = p / q
        tau = params["tau"]
        if ratio is not None and abs(ratio - tau) > 1e-6 and (ratio >= tau) != acc:
            probs.add(
                pos, f"accepted is {str(acc).lower()} but p/q = {ratio:.6g} {'>=' if ratio >= tau else '<'} tau = {tau}"
            )
    elif rule == "typical":
        cutoff = v.get("cutoff")
        if cutoff is not None and p is not None and abs(p - cutoff) > 1e-9 and (p > cutoff) != acc:
            probs.add(
                pos,
                f"accepted is {str(acc).lower()} but p = {p:.6g} {'>' if p > cutoff else '<='} cutoff = {cutoff:.6g}",
            )
    elif rule == "greedy":
        top = v.get("top")
        if isinstance(top, list) and top and isinstance(top[0], dict):
            best = top[0]
            if acc and p is not None and p < best["prob"] - TOL:
                probs.add(pos, f"accepted under greedy but p = {p:.6g} is below the argmax's {best['prob']:.6g}")
            if not acc and d["token_id"] == best["token_id"]:
                probs.add(pos, "rejected under greedy although the draft is the target's argmax")


def _check_output(
    out: object, steps: list[Step], complete: bool, eos: list[int], budget: int | None, probs: _Problems
) -> None:
    if out is None:
        probs.add("output", "missing (an interrupted JSONL trace has none; the app rebuilds it from the steps)")
        return
    if not isinstance(out, dict):
        probs.add("output", "must be an object")
        return
    ids = out.get("token_ids")
    if not (isinstance(ids, list) and all(_is_int(t) for t in ids)):
        probs.add("output.token_ids", "must be a list of integers")
        return
    if out.get("stop_reason") not in STOP_REASONS:
        probs.add(
            "output.stop_reason", f"must be one of {', '.join(STOP_REASONS)}, got {_short(out.get('stop_reason'))}"
        )
    if not isinstance(out.get("text"), str):
        probs.add("output.text", "must be a string")
    if budget is not None and len(ids) > budget:
        probs.add("output.token_ids", f"{len(ids)} tokens, more than max_new_tokens = {budget}")
    if complete and not probs.full:
        want = output_ids(steps, eos, budget)
        if ids != want:
            at = next((i for i, (a, b) in enumerate(zip(ids, want, strict=False)) if a != b), min(len(ids), len(want)))
            probs.add(
                "output.token_ids",
                f"differ from the accepted drafts + next tokens of the steps at token {at} "
                f"({len(ids)} tokens vs {len(want)} reconstructed)",
            )


# ---------------------------------------------------------------- summaries


def summarize(trace: Trace) -> dict[str, Any]:
    """Acceptance rate, accepted lengths, tokens per step, per-position acceptance, time split."""
    steps = trace["steps"]
    gamma = max((len(s["draft"]) for s in steps), default=0)
    drafted = sum(len(s["draft"]) for s in steps)
    accepted = sum(s["n_accepted"] for s in steps)
    rejections = sum(1 for s in steps if s["n_accepted"] < len(s["draft"]))
    out = trace.get("output") or finish(dict(trace), "stopped")["output"]  # type: ignore[arg-type]
    per_pos = []
    for j in range(gamma):
        seen = [
            s["verify"][j]["accepted"] for s in steps if j < len(s["verify"]) and s["verify"][j]["accepted"] is not None
        ]
        per_pos.append(sum(seen) / len(seen) if seen else None)
    draft_ms = sum(s.get("timing_ms", {}).get("draft", 0.0) for s in steps if s.get("timing_ms"))
    verify_ms = sum(s.get("timing_ms", {}).get("verify", 0.0) for s in steps if s.get("timing_ms"))
    n_steps = len(steps)
    return {
        "steps": n_steps,
        "tokens": len(out["token_ids"]),
        "tokens_per_step": len(out["token_ids"]) / n_steps if n_steps else 0.0,
        "drafted": drafted,
        "accepted": accepted,
        # share of drafted tokens that ended up in the output
        "acceptance_rate": accepted / drafted if drafted else 0.0,
        # per-decision acceptance probability: accepted / (accepted + rejections); the α of the theory
        "alpha": accepted / (accepted + rejections) if accepted + rejections else 0.0,
        "mean_accepted": accepted / n_steps if n_steps else 0.0,
        "accepted_length_counts": [sum(1 for s in steps if s["n_accepted"] == n) for n in range(gamma + 1)],
        "per_position_acceptance": per_pos,
        "draft_ms": draft_ms,
        "verify_ms": verify_ms,
        "draft_share": draft_ms / (draft_ms + verify_ms) if draft_ms + verify_ms else None,
        "stop_reason": out.get("stop_reason"),
    }
