"""llama.cpp: the speculative examples' printed statistics and the server's 'timings' object."""

from __future__ import annotations

import re
from typing import Any

from specviz.formats.runsummary._common import (
    SRC_LLAMA_EXAMPLE,
    SRC_LLAMA_TIMINGS,
    RunSummary,
    _bad,
    _check_accepted,
    _count,
    _lines,
    _number,
    _summary,
    _text_count,
    _text_number,
    _where,
)
from specviz.formats.runsummary._json import _id, _last_per_key
from specviz.trace import TraceError

_LLAMA_SNIFF = re.compile(r"\bn_drafted\s*=\s*\d")
_LLAMA_KV = re.compile(r"(?:^|\s)(n_drafted|n_draft|n_predict|n_accept)\s*=\s*(\S+)\s*$")
_LLAMA_ACCEPT = re.compile(r"(?:^|\s)accept\s*=\s*(\S+?)%\s*$")
_LLAMA_SPEED = re.compile(r"\b(encoded|decoded)\s+(\S+) tokens in\s+(\S+) seconds, speed:\s+(\S+) t/s")


def _llama_example(text: str, name: str) -> RunSummary:
    """llama.cpp examples/speculative/speculative.cpp and examples/speculative-simple/speculative-simple.cpp,
    end of main(): "n_draft = …", "n_predict = …", "n_drafted = …", "n_accept = …", "accept = …%",
    and the "encoded/decoded N tokens in S seconds, speed: X t/s" lines."""
    values: dict[str, tuple[int, int]] = {}
    speeds: dict[str, tuple[int, float, float, float]] = {}
    accept_pct: tuple[int, str] | None = None
    for i, line in enumerate(_lines(text)):
        where = _where(name, i + 1)
        m = _LLAMA_KV.search(line)
        if m is not None:
            key = m.group(1)
            if key in values:
                raise TraceError(f"{where}: a second '{key}' (first at line {values[key][0]}); keep one run per file")
            values[key] = (i + 1, _text_count(m.group(2), where, key))
            continue
        m = _LLAMA_ACCEPT.search(line)
        if m is not None:
            accept_pct = (i + 1, m.group(1))
            continue
        m = _LLAMA_SPEED.search(line)
        if m is not None:
            what = m.group(1)
            speeds[what] = (
                _text_count(m.group(2), where, f"{what} tokens"),
                _text_number(m.group(3), where, f"{what} seconds"),
                _text_number(m.group(4), where, f"{what} speed"),
                i + 1,
            )
    for key in ("n_drafted", "n_accept"):
        if key not in values:
            raise TraceError(f"{name}: no '{key} = N' line; the speculative example prints it at the end of a run")
    line_acc, accepted = values["n_accept"]
    drafted = values["n_drafted"][1]
    _check_accepted(accepted, drafted, _where(name, line_acc), "n_accept")
    fields: dict[str, Any] = {k: v for k, (_, v) in values.items()}
    if accept_pct is not None:
        line, s = accept_pct
        if not (drafted == 0 and s.lower().lstrip("+-") in ("nan", "inf")):
            fields["accept %"] = _text_number(s, _where(name, line), "accept", 100.0, "a percentage in [0, 100]")
    timings = {}
    for what, key in (("encoded", "encode"), ("decoded", "decode")):
        if what in speeds:
            n, seconds, speed, _ = speeds[what]
            fields[f"{what} tokens"] = n
            timings[f"{key}_ms"] = seconds * 1000.0
            timings[f"{key}_tokens_per_s"] = speed
    return _summary(
        "llama.cpp",
        SRC_LLAMA_EXAMPLE,
        name,
        1,
        draft_tokens=drafted,
        accepted_tokens=accepted,
        output_tokens=values["n_predict"][1] if "n_predict" in values else None,
        timings=timings,
        fields=fields,
        notes=["the example does not print how many verification steps it ran: no mean acceptance length"],
    )


def _llama_timings(records: list[tuple[int, dict[str, Any]]], name: str, stream: bool) -> RunSummary:
    """llama.cpp server: the "timings" object of /completion and OpenAI-compatible responses,
    ggml-org/llama.cpp tools/server/server-task.cpp, result_timings::to_json (draft_n and
    draft_n_accepted are present only when draft_n > 0)."""
    if stream:
        records = _last_per_key(records, _id)
    sums = {"prompt_n": 0, "predicted_n": 0, "draft_n": 0, "draft_n_accepted": 0, "cache_n": 0}
    ms = {"prompt_ms": 0.0, "predicted_ms": 0.0}
    have_ms = {"prompt_ms": True, "predicted_ms": True}
    for line, obj in records:
        where = _where(name, line)
        t = obj["timings"]
        if t.get("predicted_n") is None:
            raise _bad(where, "timings.predicted_n", "is missing", hint="llama.cpp writes it in every timings object")
        for key in sums:
            if t.get(key) is not None:
                v = t[key]
                if key in ("prompt_n", "predicted_n") and isinstance(v, int) and v == -1:
                    v = 0  # llama.cpp's "not measured" marker
                sums[key] += _count(v, where, f"timings.{key}")
        _check_accepted(t.get("draft_n_accepted") or 0, t.get("draft_n") or 0, where, "timings.draft_n_accepted")
        for key in ms:
            if t.get(key) is None:
                have_ms[key] = False
            else:
                ms[key] += _number(t[key], where, f"timings.{key}")
        for key in ("prompt_per_second", "predicted_per_second", "prompt_per_token_ms", "predicted_per_token_ms"):
            if t.get(key) is not None and not (isinstance(t[key], (int, float)) and t[key] == -1):
                _number(t[key], where, f"timings.{key}")
    timings: dict[str, float] = {}
    for key, n in (("prompt_ms", "prompt_n"), ("predicted_ms", "predicted_n")):
        if have_ms[key]:
            timings[key] = ms[key]
            if ms[key] > 0:
                timings[key.replace("_ms", "_tokens_per_s")] = sums[n] / ms[key] * 1000.0
    notes = ["the server does not report how many verification steps it ran: no mean acceptance length"]
    if sums["draft_n"] == 0:
        notes.append("no draft_n in timings: the server drafted nothing (is a draft model or --spec option set?)")
    return _summary(
        "llama.cpp",
        SRC_LLAMA_TIMINGS,
        name,
        len(records),
        draft_tokens=sums["draft_n"],
        accepted_tokens=sums["draft_n_accepted"],
        output_tokens=sums["predicted_n"],
        timings=timings,
        fields={"responses": len(records), "prompt_n": sums["prompt_n"], "cache_n": sums["cache_n"]},
        notes=notes,
    )
