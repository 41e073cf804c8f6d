"""JSON responses as records: one object, an array, JSONL or a server-sent-event stream, each value
with the line it starts on; and the per-request speculative-decoding object that vLLM and
TensorRT-LLM share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from specviz.formats.runsummary._common import (
    MAX_LIST,
    MAX_POSITIONS,
    MAX_RECORDS,
    _bad,
    _check_accepted,
    _count,
    _histogram,
    _lines,
    _number,
    _rate,
    _where,
)
from specviz.trace import TraceError, parse_line, raw_decode, short


def _json_values(text: str, name: str) -> tuple[list[tuple[int, Any]], bool, bool]:
    """Top-level JSON values with the line each starts on, from one object, an array, JSONL or an
    SSE stream. Returns (values, is_stream, a cut-off last JSONL line was dropped)."""
    lines = _LineCounter(text)
    start = len(text) - len(text.lstrip())
    if text.startswith(("data:", "event:"), start):
        return _sse_values(text, name), True, False
    if text.startswith("[", start):
        return _array_values(text, start, name, lines), False, False
    head, end = raw_decode(text, start, _where(name, lines.at(start)))
    rest = text[end:]
    if not rest.strip():
        return [(lines.at(start), head)], False, False
    if "\n" in text[start:end] or not rest.lstrip(" \t\r").startswith("\n"):
        raise TraceError(
            f"{_where(name, lines.at(end + len(rest) - len(rest.lstrip())))}: unexpected data after the JSON value"
        )
    values: list[tuple[int, Any]] = []
    raw = _lines(text)
    last = max((i for i, ln in enumerate(raw) if ln.strip()), default=-1)
    partial = False
    for i, line in enumerate(raw):
        if not line.strip():
            continue
        try:
            values.append((i + 1, parse_line(line, _where(name, i + 1))))
        except TraceError:
            if i == last and not text.endswith("\n") and values:
                partial = True  # a JSONL file still being written: keep the complete lines
                break
            raise
        if len(values) > MAX_RECORDS:
            raise TraceError(f"{name}: more than {MAX_RECORDS:,} JSON lines")
    return values, False, partial


class _LineCounter:
    """Line numbers of increasing offsets into a text, without rescanning it from the start."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.line = text, 0, 1

    def at(self, pos: int) -> int:
        if pos < self.pos:
            self.pos, self.line = 0, 1
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos
        return self.line


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _array_values(text: str, start: int, name: str, lines: _LineCounter) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    pos = _skip_ws(text, start + 1)
    if text.startswith("]", pos):
        raise TraceError(
            f"{_where(name, lines.at(pos))}: an empty JSON array; a run summary needs at least one response"
        )
    while True:
        line = lines.at(pos)
        obj, end = raw_decode(text, pos, _where(name, line))
        out.append((line, obj))
        if len(out) > MAX_RECORDS:
            raise TraceError(f"{name}: more than {MAX_RECORDS:,} responses in the array")
        pos = _skip_ws(text, end)
        if pos >= len(text):
            raise TraceError(
                f"{_where(name, lines.at(len(text)))}: the JSON array is not closed (is the file cut short?)"
            )
        if text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if text[pos] == "]":
            break
        raise TraceError(f"{_where(name, lines.at(pos))}: expected ',' or ']' in the JSON array")
    if text[pos + 1 :].strip():
        raise TraceError(f"{_where(name, lines.at(_skip_ws(text, pos + 1)))}: unexpected data after the JSON array")
    return out


def _sse_values(text: str, name: str) -> list[tuple[int, Any]]:
    """A server-sent-event stream as the OpenAI-compatible servers send it: "data: {...}" lines."""
    out: list[tuple[int, Any]] = []
    for i, line in enumerate(_lines(text)):
        s = line.strip()
        if not s or s.startswith(":") or s.startswith(("event:", "id:", "retry:")):
            continue
        if not s.startswith("data:"):
            raise TraceError(f"{_where(name, i + 1)}: not a server-sent-event line ('data: {{...}}')")
        payload = s[5:].strip()
        if payload == "[DONE]":
            continue
        out.append((i + 1, parse_line(payload, _where(name, i + 1))))
        if len(out) > MAX_RECORDS:
            raise TraceError(f"{name}: more than {MAX_RECORDS:,} events in the stream")
    if not out:
        raise TraceError(f"{name}: a server-sent-event stream without data")
    return out


def _records(values: list[tuple[int, Any]], name: str) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    for line, v in values:
        items = v if isinstance(v, list) else [v]  # a JSONL line may hold a batch response (an array)
        for item in items:
            if not isinstance(item, dict):
                raise TraceError(f"{_where(name, line)}: each response must be a JSON object, got {short(item)}")
            out.append((line, item))
        if len(out) > MAX_RECORDS:
            raise TraceError(f"{name}: more than {MAX_RECORDS:,} responses")
    return out


def _last_per_key(
    records: list[tuple[int, dict[str, Any]]], key: Callable[[dict[str, Any]], Any]
) -> list[tuple[int, dict[str, Any]]]:
    """In a stream, each event repeats (or completes) the statistics so far: keep the last per request."""
    last: dict[Any, tuple[int, dict[str, Any]]] = {}
    for line, obj in records:
        last[key(obj)] = (line, obj)
    return sorted(last.values(), key=lambda t: t[0])


def _id(obj: dict[str, Any]) -> Any:
    v = obj.get("id")
    return v if isinstance(v, (str, int)) and not isinstance(v, bool) else None


# ---------------------------------------------------------------- per-request speculative-decoding objects


def _spec_block(
    block: dict[str, Any], where: str, prefix: str, keys: dict[str, str]
) -> tuple[int, int, int, list[int] | None, int | None]:
    """steps, drafted, accepted, histogram, k from a vLLM or TensorRT-LLM per-request object."""
    steps = _count(block.get(keys["steps"]), where, f"{prefix}.{keys['steps']}")
    drafted = _count(block.get(keys["drafted"]), where, f"{prefix}.{keys['drafted']}")
    accepted = _count(block.get(keys["accepted"]), where, f"{prefix}.{keys['accepted']}")
    _check_accepted(accepted, drafted, where, f"{prefix}.{keys['accepted']}")
    hist = None
    if block.get("acceptance_histogram") is not None:
        field = f"{prefix}.acceptance_histogram"
        hist = _histogram(block["acceptance_histogram"], where, field)
        if sum(hist) != steps:
            raise _bad(where, field, f"counts {sum(hist)} steps, but {keys['steps']} is {steps}")
        if sum(j * c for j, c in enumerate(hist)) != accepted:
            raise _bad(
                where, field, f"accounts for {sum(j * c for j, c in enumerate(hist))} accepted tokens, not {accepted}"
            )
    k = None
    if block.get("num_spec_tokens") is not None:
        k = _count(block["num_spec_tokens"], where, f"{prefix}.num_spec_tokens")
        if k > MAX_POSITIONS:
            raise _bad(where, f"{prefix}.num_spec_tokens", f"is more than {MAX_POSITIONS}", k)
        if hist is not None and len(hist) > k + 1:
            raise _bad(
                where, f"{prefix}.acceptance_histogram", f"has {len(hist)} buckets for at most {k} drafts per step"
            )
        if drafted > steps * k:
            raise _bad(where, f"{prefix}.{keys['drafted']}", f"exceeds {steps} steps x {k} drafts", drafted)
    for key in ("draft_acceptance_rate", "acceptance_rate"):
        if block.get(key) is not None:
            _rate(block[key], where, f"{prefix}.{key}")
    if block.get("mean_acceptance_length") is not None:
        _number(block["mean_acceptance_length"], where, f"{prefix}.mean_acceptance_length", float(MAX_POSITIONS + 1))
    return steps, drafted, accepted, hist, k


def _per_step(block: dict[str, Any], where: str, prefix: str, steps: int, drafted: int, accepted: int) -> bool:
    arrays = {}
    for key in ("per_step_accepted", "per_step_drafted"):
        v = block.get(key)
        if v is None:
            continue
        field = f"{prefix}.{key}"
        if not isinstance(v, list) or len(v) > MAX_LIST:
            raise _bad(where, field, f"must be an array of at most {MAX_LIST:,} counts", v)
        if len(v) != steps:
            raise _bad(where, field, f"has {len(v)} entries for {steps} steps")
        arrays[key] = [_count(c, where, f"{field}[{j}]") for j, c in enumerate(v)]
    acc, dr = arrays.get("per_step_accepted"), arrays.get("per_step_drafted")
    if acc is not None and sum(acc) != accepted:
        raise _bad(where, f"{prefix}.per_step_accepted", f"sums to {sum(acc)}, not {accepted}")
    if dr is not None and sum(dr) != drafted:
        raise _bad(where, f"{prefix}.per_step_drafted", f"sums to {sum(dr)}, not {drafted}")
    if acc is not None and dr is not None:
        bad = next((j for j, (a, d) in enumerate(zip(acc, dr, strict=True)) if a > d), None)
        if bad is not None:
            raise _bad(
                where,
                f"{prefix}.per_step_accepted[{bad}]",
                f"is more than the {dr[bad]} drafted in that step",
                acc[bad],
            )
    return bool(arrays)


def _usage_tokens(obj: dict[str, Any], where: str) -> int | None:
    usage = obj.get("usage")
    if not isinstance(usage, dict) or usage.get("completion_tokens") is None:
        return None
    return _count(usage["completion_tokens"], where, "usage.completion_tokens")
