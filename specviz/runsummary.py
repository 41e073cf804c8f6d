"""Run summaries: the aggregate speculative-decoding statistics that serving engines emit.

A serving engine does not log each draft and its p and q; it logs counts: how many tokens were
drafted, how many were accepted, sometimes per draft position or as a histogram of accepted
lengths. specviz models such a file as its own kind of record, a *run summary*, rather than a
trace: it can be summarised and compared with the theory, but never stepped through.

Formats read, each as the engine writes it (docs/EVENTLOG.md, "Run summaries from serving
engines", cites the source file that defines each one):

- vLLM: the ``SpecDecoding metrics:`` log line (V1, one per logging interval; the lines are
  summed), the V0 ``Speculative metrics:`` line (cumulative; the last one is read), the
  ``vllm:spec_decode_*`` counters of its Prometheus ``/metrics`` text, and the per-request
  ``metrics.speculative_decoding`` object of its OpenAI-compatible responses.
- SGLang: ``meta_info`` of ``/generate`` responses (``spec_verify_ct`` and the acceptance fields).
- llama.cpp: the server's ``timings`` object, and the statistics the ``speculative`` and
  ``speculative-simple`` examples print.
- TensorRT-LLM: the per-choice ``speculative_decoding`` object (and ``avg_decoded_tokens_per_iter``)
  of ``trtllm-serve`` responses.

JSON responses may come as one object, an array, JSONL, or a server-sent-event stream
(``data: {...}`` lines). Like ``specviz.trace.loads``, every entry point treats its input as
hostile and raises only TraceError, with one line naming the file, the line and the field.

Pure Python: no torch, no streamlit.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any, TypedDict

from specviz.trace import GZIP_MAGIC, MAX_BYTES, TraceError, _parse_line, _raw_decode, _short, read_file, read_text

__all__ = [
    "ENGINES",
    "FORMAT",
    "MAX_POSITIONS",
    "MAX_RECORDS",
    "RunSummary",
    "describe",
    "load_summary",
    "loads_summary",
    "sniff_summary",
    "summary_stats",
]

FORMAT = "specviz-run-summary"
ENGINES = ("vllm", "sglang", "llama.cpp", "tensorrt-llm")
MAX_RECORDS = 100_000  # log lines, responses or choices in one file
MAX_POSITIONS = 1024  # draft positions (and histogram buckets - 1)
MAX_LIST = 1_000_000  # entries of one per-step array
MAX_COUNT = 10**15  # no real run drafts a quadrillion tokens; a bigger count is corrupt or hostile
MAX_FLOAT = 1e15
SNIFF_BYTES = 65536

SRC_VLLM_LOG = "vLLM 'SpecDecoding metrics' log lines"
SRC_VLLM_V0_LOG = "vLLM V0 'Speculative metrics' log line"
SRC_VLLM_PROM = "vLLM Prometheus /metrics counters"
SRC_VLLM_RESPONSE = "vLLM per-request metrics.speculative_decoding"
SRC_SGLANG = "SGLang meta_info of /generate responses"
SRC_LLAMA_TIMINGS = "llama.cpp server 'timings' of responses"
SRC_LLAMA_EXAMPLE = "llama.cpp speculative example statistics"
SRC_TRT = "TensorRT-LLM per-choice speculative_decoding"
SRC_TRT_AVG = "TensorRT-LLM per-choice avg_decoded_tokens_per_iter"

ACCEPTED_KINDS = (
    "vLLM 'SpecDecoding metrics:' or 'Speculative metrics:' log lines, vLLM /metrics (Prometheus) text, "
    "vLLM or TensorRT-LLM OpenAI responses with speculative-decoding stats, SGLang /generate responses "
    "(meta_info.spec_verify_ct), llama.cpp server responses (timings), or the llama.cpp speculative "
    "example's printed statistics"
)

# what "mean acceptance length" means for each source (describe() and the docs say it in words)
MAL_DEFINITION = {
    SRC_VLLM_LOG: "1 + accepted / drafts: tokens per verification step, the bonus token included",
    SRC_VLLM_V0_LOG: "emitted tokens / drafts (= 1 + accepted prefix / drafts): the bonus token included",
    SRC_VLLM_PROM: "1 + accepted / drafts: tokens per verification step, the bonus token included",
    SRC_VLLM_RESPONSE: "1 + accepted / verification steps, the bonus token included",
    SRC_SGLANG: "completion tokens / verification steps (SGLang's spec_accept_length): includes the bonus "
    "token and the first token, which came from the prefill",
    SRC_TRT: "1 + accepted / verification steps, the bonus token included",
    SRC_TRT_AVG: "TensorRT-LLM's avg_decoded_tokens_per_iter: decoded tokens per iteration (unweighted mean "
    "over choices)",
}

NO_STEPPING = "no per-token p or q: a run summary cannot be stepped through"
NO_TEXT = "no token text: the drafts and the output cannot be shown"


class RunSummary(TypedDict):
    format: str
    engine: str
    source: str
    name: str
    records: int
    drafts: int | None
    draft_tokens: int | None
    accepted_tokens: int | None
    steps: int | None
    output_tokens: int | None
    per_position_acceptance: list[float] | None
    accepted_length_counts: list[int] | None
    mean_acceptance_length: float | None
    timings: dict[str, float] | None
    fields: dict[str, Any]
    missing: list[str]


# ---------------------------------------------------------------- entry points


def load_summary(path: str | Path) -> RunSummary:
    """A run summary from a file (any format `loads_summary` reads). Raises only TraceError."""
    return loads_summary(read_file(path, MAX_BYTES), Path(path).name, MAX_BYTES)


def loads_summary(data: bytes | str, name: str = "run summary", max_bytes: int = MAX_BYTES) -> RunSummary:
    """Parse an engine's statistics (log, Prometheus text, JSON/JSONL/SSE responses) into a RunSummary.

    Raises TraceError, with a one-line message naming the file, line and field, and nothing else.
    The formats and the engine source that defines each are listed in the module docstring and in
    docs/EVENTLOG.md.
    """
    try:
        return _loads(data, name, max_bytes)
    except TraceError:
        raise
    except RecursionError:
        raise TraceError(f"{name}: nested too deeply to be a run summary") from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:  # a bug, not a crash
        raise TraceError(f"{name}: cannot be read as a run summary ({type(exc).__name__})") from None


def sniff_summary(data: bytes | str, name: str = "") -> str | None:
    """The engine (one of ENGINES) whose statistics these bytes look like, or None. Never raises.

    Looks at the first 64 KB only (gunzipping as much as needed), by content; `name` is unused
    but kept for symmetry with `specviz.eventlog.sniff`. A native specviz trace gives None.
    """
    try:
        return _sniff(data)
    except Exception:
        return None


def _sniff(data: bytes | str) -> str | None:
    raw = data[:SNIFF_BYTES].encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data[:SNIFF_BYTES])
    if raw[:2] == GZIP_MAGIC:
        try:
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, SNIFF_BYTES)
        except zlib.error:
            return None
    head = raw.decode("utf-8", "replace")
    if '"specviz-trace"' in head or '"draft_token"' in head:
        return None  # a native trace or an event log
    if _V1 in head or _V0 in head or _PROM_SNIFF.search(head):
        return "vllm"
    if '"spec_verify_ct"' in head:
        return "sglang"
    if '"total_draft_tokens"' in head or '"avg_decoded_tokens_per_iter"' in head:
        return "tensorrt-llm"
    if '"speculative_decoding"' in head and '"num_accepted_draft_tokens"' in head:
        return "vllm"
    if '"timings"' in head and '"predicted_n"' in head:
        return "llama.cpp"
    if _LLAMA_SNIFF.search(head) and re.search(r"\bn_accept\s*=", head):
        return "llama.cpp"
    return None


def _loads(data: bytes | str, name: str, max_bytes: int) -> RunSummary:
    text = read_text(data, name, max_bytes, "save the engine's output as UTF-8 text")
    if "\x00" in text:
        raise TraceError(f"{name} contains NUL bytes: it is not an engine's log or response")
    start = len(text) - len(text.lstrip())
    looks_json = text.startswith(("{", "[", "data:", "event:"), start)
    json_error: TraceError | None = None
    if looks_json:
        try:
            values, stream, partial = _json_values(text, name)
        except TraceError as exc:
            json_error = exc
        else:
            return _from_json(values, stream, partial, name)
    kind = _text_kind(text)
    if kind is None:
        if json_error is not None:
            raise json_error
        hint = " (it is a specviz trace: open it as a trace)" if '"specviz-trace"' in text[:4096] else ""
        raise TraceError(f"{name} is none of the formats specviz reads as a run summary{hint}: {ACCEPTED_KINDS}")
    if kind == "vllm-log":
        return _vllm_log(text, name)
    if kind == "vllm-prom":
        return _vllm_prometheus(text, name)
    return _llama_example(text, name)


# ---------------------------------------------------------------- values


def _where(name: str, line: int) -> str:
    return f"{name} line {line}"


def _bad(where: str, field: str, problem: str, value: object = ..., hint: str = "") -> TraceError:
    got = "" if value is ... else f", got {_short(value)}"
    return TraceError(f"{where}: field '{field}' {problem}{got}" + (f"; {hint}" if hint else ""))


def _count(v: Any, where: str, field: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(where, field, "must be a whole number >= 0", v, "counts are integers, as the engine writes them")
    if v < 0:
        raise _bad(where, field, "must be >= 0", v)
    if v > MAX_COUNT:
        raise _bad(where, field, "is too large for a count", v, "the file is corrupt")
    return v


def _number(v: Any, where: str, field: str, hi: float = MAX_FLOAT, what: str = "a finite number >= 0") -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _bad(where, field, f"must be {what}", v)
    x = float(v)
    if not math.isfinite(x) or not 0.0 <= x <= hi:
        raise _bad(where, field, f"must be {what}", v)
    return x


def _rate(v: Any, where: str, field: str) -> float:
    return _number(v, where, field, 1.0, "a fraction in [0, 1]")


def _text_number(s: str, where: str, field: str, hi: float = MAX_FLOAT, what: str = "a finite number >= 0") -> float:
    try:
        x = float(s) if len(s) <= 40 else math.nan
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or not 0.0 <= x <= hi:
        raise _bad(where, field, f"must be {what}", s)
    return x


def _text_count(s: str, where: str, field: str) -> int:
    if not re.fullmatch(r"\d{1,16}", s) or int(s) > MAX_COUNT:
        raise _bad(where, field, "must be a whole number >= 0", s)
    return int(s)


def _histogram(v: Any, where: str, field: str) -> list[int]:
    """A dense list of counts (index = accepted drafts in a step), or a sparse {"j": count} object."""
    if isinstance(v, dict):
        if len(v) > MAX_POSITIONS + 1:
            raise _bad(where, field, f"has more than {MAX_POSITIONS + 1} buckets", v)
        dense: dict[int, int] = {}
        for key, count in v.items():
            if not re.fullmatch(r"\d{1,5}", str(key)) or int(key) > MAX_POSITIONS:
                raise _bad(where, field, f"keys must be accepted counts 0..{MAX_POSITIONS}", key)
            dense[int(key)] = _count(count, where, f"{field}.{key}")
        return [dense.get(j, 0) for j in range(max(dense, default=-1) + 1)]
    if not isinstance(v, list):
        raise _bad(where, field, "must be an array of counts", v)
    if len(v) > MAX_POSITIONS + 1:
        raise _bad(where, field, f"has more than {MAX_POSITIONS + 1} buckets", v)
    return [_count(c, where, f"{field}[{j}]") for j, c in enumerate(v)]


def _add(total: list[int], more: list[int]) -> list[int]:
    n = max(len(total), len(more))
    return [(total[j] if j < len(total) else 0) + (more[j] if j < len(more) else 0) for j in range(n)]


def _survival(hist: list[int]) -> list[float] | None:
    """Per-position acceptance from a histogram: the share of steps that accepted >= j drafts, j = 1.."""
    steps = sum(hist)
    if steps <= 0 or len(hist) < 2:
        return None
    return [sum(hist[j:]) / steps for j in range(1, len(hist))]


def _check_accepted(accepted: int | None, drafted: int | None, where: str, field: str) -> None:
    if accepted is not None and drafted is not None and accepted > drafted:
        raise _bad(
            where,
            field,
            f"is {accepted}, more than the {drafted} tokens drafted",
            hint="a run accepts at most every draft",
        )


# ---------------------------------------------------------------- building a summary


def _summary(engine: str, source: str, name: str, records: int, **values: Any) -> RunSummary:
    rs: RunSummary = {
        "format": FORMAT,
        "engine": engine,
        "source": source,
        "name": name,
        "records": records,
        "drafts": values.get("drafts"),
        "draft_tokens": values.get("draft_tokens"),
        "accepted_tokens": values.get("accepted_tokens"),
        "steps": values.get("steps"),
        "output_tokens": values.get("output_tokens"),
        "per_position_acceptance": values.get("per_position_acceptance"),
        "accepted_length_counts": values.get("accepted_length_counts"),
        "mean_acceptance_length": values.get("mean_acceptance_length"),
        "timings": values.get("timings") or None,
        "fields": dict(values.get("fields") or {}),
        "missing": [],
    }
    missing = [NO_STEPPING, NO_TEXT]
    if rs["draft_tokens"] is None or rs["accepted_tokens"] is None:
        missing.append("no drafted and accepted token counts: no acceptance rate")
    elif rs["draft_tokens"] == 0:
        missing.append("nothing was drafted: acceptance is undefined")
    if rs["drafts"] is None and rs["steps"] is None:
        missing.append("no count of drafting steps: accepted tokens per step is not known exactly")
    if rs["per_position_acceptance"] is None:
        missing.append("no per-position acceptance")
    if rs["accepted_length_counts"] is None:
        missing.append("no histogram of accepted lengths")
    if rs["timings"] is None:
        missing.append("no timings: no cost analysis (draft vs verify time)")
    else:
        missing.append("no split of time into drafting and verification: the cost ratio c is unknown")
    rs["missing"] = missing + list(values.get("notes") or [])
    return rs


# ---------------------------------------------------------------- text formats

_V1 = "SpecDecoding metrics:"
_V0 = "Speculative metrics:"
_NUM = r"(?:[-+]?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?i:nan|inf(?:inity)?))"
_V1_RE = {
    "mean_acceptance_length": re.compile(rf"Mean acceptance length: ({_NUM})"),
    "accepted_throughput": re.compile(rf"Accepted throughput: ({_NUM}) tokens/s"),
    "drafted_throughput": re.compile(rf"Drafted throughput: ({_NUM}) tokens/s"),
    "accepted": re.compile(rf"(?:^|, )Accepted: ({_NUM}) tokens"),
    "drafted": re.compile(rf"(?:^|, )Drafted: ({_NUM}) tokens"),
    "per_position": re.compile(rf"Per-position acceptance rate: ({_NUM}(?:, {_NUM})*)"),
    "rate_pct": re.compile(rf"(?:^|, )(?:Avg )?Draft acceptance rate: ({_NUM})%"),
}
_V0_RE = {
    "rate": re.compile(rf"Draft acceptance rate: ({_NUM})"),
    "efficiency": re.compile(rf"System efficiency: ({_NUM})"),
    "k": re.compile(rf"Number of speculative tokens: ({_NUM})"),
    "accepted": re.compile(rf"Number of accepted tokens: ({_NUM})"),
    "drafted": re.compile(rf"Number of draft tokens: ({_NUM})"),
    "emitted": re.compile(rf"Number of emitted tokens: ({_NUM})"),
}
_PROM_SNIFF = re.compile(r"^vllm:spec_decode_", re.M)
_PROM_LINE = re.compile(r"(vllm:spec_decode_[A-Za-z0-9_:]*)(\{[^\n]*\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?[ \t]*")
_PROM_LABEL = re.compile(r'[ \t]*([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*"((?:[^"\\]|\\.)*)"[ \t]*(,|$)')
_LLAMA_SNIFF = re.compile(r"\bn_drafted\s*=\s*\d")
_LLAMA_KV = re.compile(r"(?:^|\s)(n_drafted|n_draft|n_predict|n_accept)\s*=\s*(\S+)\s*$")
_LLAMA_ACCEPT = re.compile(r"(?:^|\s)accept\s*=\s*(\S+?)%\s*$")
_LLAMA_SPEED = re.compile(r"\b(encoded|decoded)\s+(\S+) tokens in\s+(\S+) seconds, speed:\s+(\S+) t/s")


def _text_kind(text: str) -> str | None:
    if _V1 in text or _V0 in text:
        return "vllm-log"
    if _PROM_SNIFF.search(text):
        return "vllm-prom"
    if _LLAMA_SNIFF.search(text) and re.search(r"(?:^|\s)n_accept\s*=", text, re.M):
        return "llama-example"
    return None


def _lines(text: str) -> list[str]:
    return text.split("\n")  # "\n" only: a log may hold U+2028 inside generated text


def _partial_last(i: int, lines: list[str], text: str) -> bool:
    """True for the last line of a file that does not end in a newline: a log cut off mid-write."""
    return i == len(lines) - 1 and not text.endswith("\n")


def _vllm_log(text: str, name: str) -> RunSummary:
    """vLLM log lines. V1: vllm-project/vllm vllm/v1/spec_decode/metrics.py, SpecDecodingLogging.log
    (one line per logging interval, counts reset after each: the lines are summed). V0:
    vllm/engine/metrics.py, LoggingStatLogger._format_spec_decode_metrics_str (cumulative totals
    from vllm/spec_decode/metrics.py AsyncMetricsCollector: the last line is read)."""
    lines = _lines(text)
    v1: list[tuple[int, dict[str, Any]]] = []
    v0: list[tuple[int, dict[str, Any]]] = []
    partial = False
    for i, line in enumerate(lines):
        for marker, out, parse in ((_V1, v1, _v1_line), (_V0, v0, _v0_line)):
            at = line.find(marker)
            if at < 0:
                continue
            where = _where(name, i + 1)
            parsed = parse(line[at + len(marker) :].strip(), where, _partial_last(i, lines, text))
            if parsed is None:
                partial = True
                continue
            out.append((i + 1, parsed))
            if len(v1) + len(v0) > MAX_RECORDS:
                raise TraceError(f"{name}: more than {MAX_RECORDS:,} metrics lines; split the log")
    if v1 and v0:
        raise TraceError(
            f"{name}: both V1 'SpecDecoding metrics' (line {v1[0][0]}) and V0 'Speculative metrics' "
            f"(line {v0[0][0]}) lines; keep one server run's log per file"
        )
    notes = ["the log line was cut off: the last, unfinished metrics line was left out"] if partial else []
    if v0:
        return _vllm_v0(v0, name, notes)
    if not v1:
        raise TraceError(f"{name}: no complete vLLM metrics line (only a cut-off one)")
    return _vllm_v1(v1, name, notes)


def _v1_line(seg: str, where: str, last_partial: bool) -> dict[str, Any] | None:
    found = {k: rx.search(seg) for k, rx in _V1_RE.items()}
    if found["accepted"] is None or found["drafted"] is None:
        if last_partial:
            return None
        field = "Accepted" if found["accepted"] is None else "Drafted"
        raise _bad(
            where,
            field,
            "is missing from the 'SpecDecoding metrics' line",
            hint="expected 'Accepted: N tokens, Drafted: N tokens'",
        )
    accepted = _text_count(found["accepted"].group(1), where, "Accepted")
    drafted = _text_count(found["drafted"].group(1), where, "Drafted")
    _check_accepted(accepted, drafted, where, "Accepted")
    out: dict[str, Any] = {"accepted": accepted, "drafted": drafted}
    empty = drafted == 0  # vLLM prints nan for the rates of an interval without drafts
    for key, field, hi in (
        ("mean_acceptance_length", "Mean acceptance length", float(MAX_POSITIONS + 1)),
        ("accepted_throughput", "Accepted throughput", MAX_FLOAT),
        ("drafted_throughput", "Drafted throughput", MAX_FLOAT),
        ("rate_pct", "Avg Draft acceptance rate", 100.0),
    ):
        m = found[key]
        if m is None:
            continue
        s = m.group(1)
        if empty and s.lower().lstrip("+-") == "nan":
            continue
        out[key] = _text_number(s, where, field, hi)
    if (
        found["mean_acceptance_length"] is not None
        and "mean_acceptance_length" in out
        and out["mean_acceptance_length"] < 1.0
    ):
        raise _bad(
            where,
            "Mean acceptance length",
            "must be >= 1 (it counts the bonus token)",
            found["mean_acceptance_length"].group(1),
        )
    m = found["per_position"]
    if m is not None:
        items = [s.strip() for s in m.group(1).split(",")]
        if len(items) > MAX_POSITIONS:
            raise _bad(where, "Per-position acceptance rate", f"lists more than {MAX_POSITIONS} positions")
        if not (empty and all(s.lower().lstrip("+-") == "nan" for s in items)):
            out["per_position"] = [
                _text_number(s, where, f"Per-position acceptance rate[{j + 1}]", 1.0, "a fraction in [0, 1]")
                for j, s in enumerate(items)
            ]
    return out


def _v0_line(seg: str, where: str, last_partial: bool) -> dict[str, Any] | None:
    found = {k: rx.search(seg) for k, rx in _V0_RE.items()}
    need = {"accepted": "Number of accepted tokens", "drafted": "Number of draft tokens"}
    for key, field in need.items():
        if found[key] is None:
            if last_partial:
                return None
            raise _bad(where, field, "is missing from the 'Speculative metrics' line")
    out: dict[str, Any] = {
        "accepted": _text_count(found["accepted"].group(1), where, "Number of accepted tokens"),
        "drafted": _text_count(found["drafted"].group(1), where, "Number of draft tokens"),
    }
    _check_accepted(out["accepted"], out["drafted"], where, "Number of accepted tokens")
    if found["k"] is not None:
        out["k"] = _text_count(found["k"].group(1), where, "Number of speculative tokens")
        if out["k"] > MAX_POSITIONS:
            raise _bad(where, "Number of speculative tokens", f"is more than {MAX_POSITIONS}", out["k"])
    if found["emitted"] is not None:
        out["emitted"] = _text_count(found["emitted"].group(1), where, "Number of emitted tokens")
    for key, field in (("rate", "Draft acceptance rate"), ("efficiency", "System efficiency")):
        m = found[key]
        if m is not None and not (out["drafted"] == 0 and m.group(1).lower().lstrip("+-") == "nan"):
            out[key] = _text_number(m.group(1), where, field, 1.0, "a fraction in [0, 1]")
    return out


def _vllm_v1(rows: list[tuple[int, dict[str, Any]]], name: str, notes: list[str]) -> RunSummary:
    accepted = sum(r["accepted"] for _, r in rows)
    drafted = sum(r["drafted"] for _, r in rows)
    line, last = rows[-1]
    # Intervals are weighted by their drafted tokens: exact when the mean draft length is the same in
    # every interval (always, when every draft has k tokens); the lines do not give the draft count.
    weighted = [(r["drafted"], r) for _, r in rows if r["drafted"] > 0]
    mal = per_pos = None
    if len(rows) == 1:
        mal = last.get("mean_acceptance_length")
        per_pos = last.get("per_position")
    elif weighted:
        if all("mean_acceptance_length" in r for _, r in weighted):
            mal = sum(w * r["mean_acceptance_length"] for w, r in weighted) / sum(w for w, _ in weighted)
        lengths = {len(r["per_position"]) for _, r in weighted if "per_position" in r}
        if len(lengths) == 1 and all("per_position" in r for _, r in weighted):
            k = lengths.pop()
            total = sum(w for w, _ in weighted)
            per_pos = [sum(w * r["per_position"][j] for w, r in weighted) / total for j in range(k)]
        if mal is not None or per_pos is not None:
            notes = [
                *notes,
                "the lines do not give the number of drafts: mean acceptance length and per-position acceptance "
                "are the intervals' values weighted by drafted tokens (exact when every draft has the same length)",
            ]
    fields: dict[str, Any] = {"metrics lines": len(rows), "first line": rows[0][0], "last line": line}
    for key, label in (
        ("mean_acceptance_length", "Mean acceptance length (last line)"),
        ("rate_pct", "Avg Draft acceptance rate % (last line)"),
    ):
        if key in last:
            fields[label] = last[key]
    if "per_position" in last:
        fields["draft positions k"] = len(last["per_position"])
    timings = {}
    if "accepted_throughput" in last:
        timings["accepted_tokens_per_s"] = last["accepted_throughput"]
    if "drafted_throughput" in last:
        timings["drafted_tokens_per_s"] = last["drafted_throughput"]
    return _summary(
        "vllm",
        SRC_VLLM_LOG,
        name,
        len(rows),
        draft_tokens=drafted,
        accepted_tokens=accepted,
        per_position_acceptance=per_pos,
        mean_acceptance_length=mal,
        timings=timings,
        fields=fields,
        notes=notes,
    )


def _vllm_v0(rows: list[tuple[int, dict[str, Any]]], name: str, notes: list[str]) -> RunSummary:
    line, r = rows[-1]  # cumulative totals since the server started: the last line has them all
    k = r.get("k")
    drafts = r["drafted"] // k if k and r["drafted"] % k == 0 else None
    emitted = r.get("emitted")
    where = _where(name, line)
    if drafts is not None and emitted is not None and not drafts <= emitted <= drafts * (k + 1):
        raise _bad(
            where, "Number of emitted tokens", f"must be between the {drafts} drafts and {drafts * (k + 1)}", emitted
        )
    fields: dict[str, Any] = {"metrics lines": len(rows), "line read": line}
    for key, label in (
        ("rate", "Draft acceptance rate"),
        ("efficiency", "System efficiency"),
        ("k", "Number of speculative tokens"),
        ("emitted", "Number of emitted tokens"),
    ):
        if key in r:
            fields[label] = r[key]
    return _summary(
        "vllm",
        SRC_VLLM_V0_LOG,
        name,
        len(rows),
        drafts=drafts,
        steps=drafts,
        draft_tokens=r["drafted"],
        accepted_tokens=r["accepted"],
        output_tokens=emitted,
        mean_acceptance_length=emitted / drafts if drafts and emitted is not None else None,
        fields=fields,
        notes=[
            *notes,
            "vLLM V0 counts every draft the verifier accepted, also after a rejected one; emitted tokens "
            "count only the accepted prefix plus one token per step",
        ],
    )


def _prom_labels(raw: str | None, where: str) -> dict[str, str]:
    if not raw:
        return {}
    body, labels, pos = raw[1:-1], {}, 0
    while pos < len(body.rstrip(" \t,")):
        m = _PROM_LABEL.match(body, pos)
        if m is None:
            raise _bad(where, "labels", 'are not Prometheus labels (name="value", ...)', raw)
        value = re.sub(r"\\(.)", lambda x: "\n" if x.group(1) == "n" else x.group(1), m.group(2))
        labels[m.group(1)] = value
        pos = m.end()
    return labels


def _vllm_prometheus(text: str, name: str) -> RunSummary:
    """vLLM /metrics text: counters created in vllm-project/vllm vllm/v1/spec_decode/metrics.py,
    SpecDecodingProm (vllm:spec_decode_num_drafts, _num_draft_tokens, _num_accepted_tokens,
    _num_accepted_tokens_per_pos with a "position" label, 0-based), labelled model_name and engine
    (vllm/v1/metrics/loggers.py, PrometheusStatLogger). Counters are cumulative since start."""
    totals: dict[str, int] = {}
    per_pos: dict[int, int] = {}
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    models: set[str] = set()
    samples = ignored = 0
    used = (
        "num_drafts",
        "num_draft_tokens",
        "num_accepted_tokens",
        "num_accepted_tokens_per_pos",
        "num_emitted_tokens",
    )
    for i, line in enumerate(_lines(text)):
        s = line.strip()
        if not s.startswith("vllm:spec_decode_"):
            continue
        where = _where(name, i + 1)
        m = _PROM_LINE.fullmatch(s)
        if m is None:
            raise TraceError(f"{where}: not a Prometheus sample line (name{{labels}} value)")
        metric = m.group(1)
        base = metric.removeprefix("vllm:spec_decode_")
        if base.endswith("_created"):
            continue
        base = base.removesuffix("_total")
        if base not in used:
            ignored += 1
            continue
        samples += 1
        if samples > MAX_RECORDS:
            raise TraceError(f"{name}: more than {MAX_RECORDS:,} vllm:spec_decode samples")
        labels = _prom_labels(m.group(2), where)
        key = (base, tuple(sorted(labels.items())))
        if key in seen:
            raise _bad(where, metric, "appears twice with the same labels", hint="keep one scrape per file")
        seen.add(key)
        if "model_name" in labels:
            models.add(labels["model_name"])
        value = _text_number(m.group(3), where, metric, float(MAX_COUNT), "a whole number >= 0")
        if not value.is_integer():
            raise _bad(where, metric, "must be a whole number >= 0", m.group(3))
        if base == "num_accepted_tokens_per_pos":
            pos = labels.get("position", "")
            if not re.fullmatch(r"\d{1,4}", pos) or int(pos) >= MAX_POSITIONS:
                raise _bad(where, "position", f"must be a draft position 0..{MAX_POSITIONS - 1}", pos)
            per_pos[int(pos)] = per_pos.get(int(pos), 0) + int(value)
        else:
            totals[base] = totals.get(base, 0) + int(value)
    if len(models) > 1:
        raise TraceError(
            f"{name}: counters of {len(models)} models ({', '.join(sorted(models))[:80]}); keep one model's lines"
        )
    for base in ("num_draft_tokens", "num_accepted_tokens"):
        if base not in totals:
            raise TraceError(
                f"{name}: no vllm:spec_decode_{base} counter; a scrape of /metrics with speculative decoding has it"
            )
    drafts = totals.get("num_drafts")
    drafted, accepted = totals["num_draft_tokens"], totals["num_accepted_tokens"]
    _check_accepted(accepted, drafted, name, "vllm:spec_decode_num_accepted_tokens")
    if drafts is not None and drafts > drafted:
        raise _bad(name, "vllm:spec_decode_num_drafts", f"is {drafts}, more than the {drafted} draft tokens")
    survival = hist = None
    if per_pos:
        k = max(per_pos) + 1
        gaps = [p for p in range(k) if p not in per_pos]
        if gaps:
            raise _bad(name, "vllm:spec_decode_num_accepted_tokens_per_pos", f"has no sample for position {gaps[0]}")
        counts = [per_pos[p] for p in range(k)]
        if drafts is not None and drafts > 0:
            chain = [drafts, *counts]
            if any(b > a for a, b in pairwise(chain)):
                raise _bad(
                    name,
                    "vllm:spec_decode_num_accepted_tokens_per_pos",
                    "must not grow with the position, nor exceed vllm:spec_decode_num_drafts",
                    hint="a draft accepted at position p+1 was accepted at p too",
                )
            survival = [c / drafts for c in counts]
            hist = [a - b for a, b in zip(chain, [*counts, 0], strict=True)]
    fields: dict[str, Any] = {"samples": samples, "other vllm:spec_decode samples ignored": ignored}
    if models:
        fields["model_name"] = models.pop()[:200]
    if "num_emitted_tokens" in totals:
        fields["vllm:spec_decode_num_emitted_tokens"] = totals["num_emitted_tokens"]
    notes = ["counters are cumulative since the server started: subtract an earlier scrape to see one run"]
    if "num_emitted_tokens" in totals:
        notes.append(
            "this scrape has vLLM V0's num_emitted_tokens counter; the V0 source read adds cumulative totals to "
            "these counters at every log interval, so treat the counts as relative, not absolute"
        )
    return _summary(
        "vllm",
        SRC_VLLM_PROM,
        name,
        samples,
        drafts=drafts,
        steps=drafts,
        draft_tokens=drafted,
        accepted_tokens=accepted,
        per_position_acceptance=survival,
        accepted_length_counts=hist,
        mean_acceptance_length=1 + accepted / drafts if drafts else None,
        fields=fields,
        notes=notes,
    )


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


# ---------------------------------------------------------------- JSON formats


def _json_values(text: str, name: str) -> tuple[list[tuple[int, Any]], bool, bool]:
    """Top-level JSON values with the line each starts on, from one object, an array, JSONL or an
    SSE stream. Returns (values, is_stream, a cut-off last JSONL line was dropped)."""
    lines = _LineCounter(text)
    start = len(text) - len(text.lstrip())
    if text.startswith(("data:", "event:"), start):
        return _sse_values(text, name), True, False
    if text.startswith("[", start):
        return _array_values(text, start, name, lines), False, False
    head, end = _raw_decode(text, start, _where(name, lines.at(start)))
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
            values.append((i + 1, _parse_line(line, _where(name, i + 1))))
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
        obj, end = _raw_decode(text, pos, _where(name, line))
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
        out.append((i + 1, _parse_line(payload, _where(name, i + 1))))
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
                raise TraceError(f"{_where(name, line)}: each response must be a JSON object, got {_short(item)}")
            out.append((line, item))
        if len(out) > MAX_RECORDS:
            raise TraceError(f"{name}: more than {MAX_RECORDS:,} responses")
    return out


def _kind(obj: dict[str, Any]) -> str | None:
    meta = obj.get("meta_info")
    if isinstance(meta, dict) and "spec_verify_ct" in meta:
        return "sglang"
    metrics = obj.get("metrics")
    if isinstance(metrics, dict) and "speculative_decoding" in metrics:
        return "vllm"
    choices = obj.get("choices")
    if isinstance(choices, list) and any(
        isinstance(c, dict)
        and (c.get("speculative_decoding") is not None or c.get("avg_decoded_tokens_per_iter") is not None)
        for c in choices
    ):
        return "tensorrt-llm"
    if isinstance(obj.get("timings"), dict):
        return "llama.cpp"
    return None


def _from_json(values: list[tuple[int, Any]], stream: bool, partial: bool, name: str) -> RunSummary:
    records = _records(values, name)
    engine = None
    first_line = 0
    chosen: list[tuple[int, dict[str, Any]]] = []
    skipped = 0
    for line, obj in records:
        kind = _kind(obj)
        if kind is None:
            skipped += 1
            continue
        if engine is None:
            engine, first_line = kind, line
        elif kind != engine:
            raise TraceError(
                f"{_where(name, line)}: a {kind} response after {engine} ones (line {first_line}); "
                "a file holds one engine's responses"
            )
        chosen.append((line, obj))
    if engine is None:
        if stream:
            raise TraceError(
                f"{name}: no event of the stream carries speculative-decoding statistics: {ACCEPTED_KINDS}"
            )
        trace = any(obj.get("format") == "specviz-trace" for _, obj in records)
        hint = " (it is a specviz trace: open it as a trace)" if trace else ""
        raise TraceError(f"{name} is none of the formats specviz reads as a run summary{hint}: {ACCEPTED_KINDS}")
    parse: Callable[[list[tuple[int, dict[str, Any]]], str, bool], RunSummary] = {
        "sglang": _sglang,
        "vllm": _vllm_responses,
        "tensorrt-llm": _trtllm,
        "llama.cpp": _llama_timings,
    }[engine]
    rs = parse(chosen, name, stream)
    rs["fields"]["responses without statistics"] = skipped
    if partial:
        rs["missing"].append("the last JSON line was cut off and left out")
    return rs


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


def _sglang(records: list[tuple[int, dict[str, Any]]], name: str, stream: bool) -> RunSummary:
    """SGLang meta_info: sgl-project/sglang python/sglang/srt/managers/tokenizer_manager.py,
    TokenizerManager._calculate_spec_decoding_metrics (later the helper fill_spec_decoding_meta):
    spec_verify_ct, spec_accept_rate, spec_accept_length = completion_tokens / spec_verify_ct, the
    accepted/proposed draft counts (three generations of names) and the histogram filled by
    Req.update_spec_acceptance_histogram (python/sglang/srt/managers/schedule_batch.py)."""
    if stream:
        records = _last_per_key(records, lambda o: _id(o["meta_info"]))
    names = {
        "accepted": ("spec_num_correct_drafts", "spec_accepted_drafts", "spec_accept_token_num"),
        "drafted": ("spec_num_proposed_drafts", "spec_proposed_drafts", "spec_draft_token_num"),
        "histogram": ("spec_correct_drafts_histogram", "spec_accept_histogram"),
    }
    steps = output = 0
    accepted: int | None = 0
    drafted: int | None = 0
    have_output = True
    hist: list[int] | None = []
    lengths: list[float] = []
    for line, obj in records:
        where = _where(name, line)
        meta = obj["meta_info"]
        verify = _count(meta["spec_verify_ct"], where, "meta_info.spec_verify_ct")
        steps += verify
        if meta.get("completion_tokens") is None:
            have_output = False
        else:
            output += _count(meta["completion_tokens"], where, "meta_info.completion_tokens")
        got: dict[str, Any] = {}
        for key, aliases in names.items():
            for alias in aliases:
                if meta.get(alias) is None:
                    continue
                field = f"meta_info.{alias}"
                value = (
                    _histogram(meta[alias], where, field) if key == "histogram" else _count(meta[alias], where, field)
                )
                if key in got and got[key] != value:
                    raise _bad(where, field, f"disagrees with meta_info.{got[key + ' field']}", meta[alias])
                got[key], got[key + " field"] = value, alias
        a, d = got.get("accepted"), got.get("drafted")
        _check_accepted(a, d, where, f"meta_info.{got.get('accepted field')}")
        if verify > 0 and (a is None or d is None):
            accepted = drafted = None  # an older SGLang: only spec_verify_ct
        if accepted is not None and drafted is not None and a is not None and d is not None:
            accepted, drafted = accepted + a, drafted + d
        if hist is not None:
            hist = _add(hist, got["histogram"]) if "histogram" in got else (hist if verify == 0 else None)
        for key, hi in (("spec_accept_rate", 1.0), ("spec_accept_length", float(MAX_POSITIONS + 2))):
            if meta.get(key) is not None:
                x = _number(meta[key], where, f"meta_info.{key}", hi)
                if key == "spec_accept_length" and verify > 0:
                    lengths.append(x)
    fields: dict[str, Any] = {"responses": len(records), "spec_verify_ct (sum)": steps}
    if lengths:
        fields["spec_accept_length (mean over responses)"] = sum(lengths) / len(lengths)
    return _summary(
        "sglang",
        SRC_SGLANG,
        name,
        len(records),
        drafts=steps,
        steps=steps,
        draft_tokens=drafted,
        accepted_tokens=accepted,
        output_tokens=output if have_output else None,
        accepted_length_counts=hist or None,
        per_position_acceptance=_survival(hist) if hist else None,
        mean_acceptance_length=output / steps if have_output and steps else None,
        fields=fields,
        notes=[
            "SGLang counts proposed drafts as steps x (speculative_num_draft_tokens - 1); with a draft tree "
            "these are tree nodes, not one chain"
        ],
    )


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


def _vllm_responses(records: list[tuple[int, dict[str, Any]]], name: str, stream: bool) -> RunSummary:
    """vLLM per-request metrics: top-level metrics.speculative_decoding of OpenAI-compatible responses
    (vllm-project/vllm docs/features/speculative_decoding/acceptance_metrics.md; server flag
    --per-request-spec-decode-metrics summary|detailed; experimental)."""
    if stream:
        records = _last_per_key(records, _id)
    keys = {"steps": "num_spec_steps", "drafted": "num_draft_tokens", "accepted": "num_accepted_draft_tokens"}
    steps = drafted = accepted = output = 0
    have_output = True
    hist: list[int] | None = []
    used = null = 0
    detailed = False
    k_seen: set[int] = set()
    for line, obj in records:
        where = _where(name, line)
        block = obj["metrics"]["speculative_decoding"]
        if block is None:
            null += 1  # speculative decoding off for this request, or n > 1
            continue
        prefix = "metrics.speculative_decoding"
        if not isinstance(block, dict):
            raise _bad(where, prefix, "must be an object or null", block)
        s, d, a, h, k = _spec_block(block, where, prefix, keys)
        detailed = _per_step(block, where, prefix, s, d, a) or detailed
        steps, drafted, accepted = steps + s, drafted + d, accepted + a
        hist = _add(hist, h) if hist is not None and h is not None else None
        if k is not None:
            k_seen.add(k)
        tokens = _usage_tokens(obj, where)
        if tokens is None:
            have_output = False
        else:
            output += tokens
        used += 1
    if used == 0:
        raise TraceError(f"{name}: every metrics.speculative_decoding is null (speculative decoding off, or n > 1)")
    fields: dict[str, Any] = {"responses": used, "responses with null statistics": null, "per-step arrays": detailed}
    if len(k_seen) == 1:
        fields["num_spec_tokens"] = k_seen.pop()
    return _summary(
        "vllm",
        SRC_VLLM_RESPONSE,
        name,
        used,
        drafts=steps,
        steps=steps,
        draft_tokens=drafted,
        accepted_tokens=accepted,
        output_tokens=output if have_output else None,
        accepted_length_counts=hist or None,
        per_position_acceptance=_survival(hist) if hist else None,
        mean_acceptance_length=1 + accepted / steps if steps else None,
        fields=fields,
        notes=[
            "vLLM leaves out steps that scheduled no draft tokens: the histogram does not show how often drafting was skipped"
        ],
    )


def _trtllm(records: list[tuple[int, dict[str, Any]]], name: str, stream: bool) -> RunSummary:
    """TensorRT-LLM per-choice stats: choices[].speculative_decoding {acceptance_rate,
    total_accepted_draft_tokens, total_draft_tokens, num_spec_steps, acceptance_histogram,
    num_spec_tokens} built in NVIDIA/TensorRT-LLM tensorrt_llm/serve/postprocess_handlers.py
    (_build_spec_decode_stats; server option per_request_spec_decode_stats), and
    choices[].avg_decoded_tokens_per_iter (tensorrt_llm/serve/openai_protocol.py)."""
    keys = {"steps": "num_spec_steps", "drafted": "total_draft_tokens", "accepted": "total_accepted_draft_tokens"}
    choices: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for line, obj in records:
        where = _where(name, line)
        if not isinstance(obj["choices"], list) or len(obj["choices"]) > MAX_RECORDS:
            raise _bad(where, "choices", "must be an array", obj["choices"])
        for j, c in enumerate(obj["choices"]):
            if not isinstance(c, dict):
                raise _bad(where, f"choices[{j}]", "must be an object", c)
            if c.get("speculative_decoding") is not None or c.get("avg_decoded_tokens_per_iter") is not None:
                choices.append((line, obj, c))
        if len(choices) > MAX_RECORDS:
            raise TraceError(f"{name}: more than {MAX_RECORDS:,} choices")
    if stream:  # the statistics ride the choice of the chunk that carries its finish_reason
        last: dict[Any, tuple[int, dict[str, Any], dict[str, Any]]] = {}
        for line, obj, c in choices:
            last[(_id(obj), c.get("index") if isinstance(c.get("index"), int) else None)] = (line, obj, c)
        choices = sorted(last.values(), key=lambda t: t[0])
    with_block = [(ln, o, c) for ln, o, c in choices if c.get("speculative_decoding") is not None]
    avgs = []
    for line, _, c in choices:
        if c.get("avg_decoded_tokens_per_iter") is not None:
            field = "choices[].avg_decoded_tokens_per_iter"
            avgs.append(_number(c["avg_decoded_tokens_per_iter"], _where(name, line), field, float(MAX_POSITIONS + 2)))
    fields: dict[str, Any] = {"choices": len(choices)}
    if avgs:
        fields["avg_decoded_tokens_per_iter (mean over choices)"] = sum(avgs) / len(avgs)
    if not with_block:
        return _summary(
            "tensorrt-llm",
            SRC_TRT_AVG,
            name,
            len(choices),
            mean_acceptance_length=sum(avgs) / len(avgs),
            fields=fields,
            notes=["no speculative_decoding object: start trtllm-serve with per_request_spec_decode_stats for counts"],
        )
    steps = drafted = accepted = output = 0
    have_output = True
    hist: list[int] | None = []
    counted: set[int] = set()
    for line, obj, c in with_block:
        where = _where(name, line)
        prefix = "choices[].speculative_decoding"
        block = c["speculative_decoding"]
        if not isinstance(block, dict):
            raise _bad(where, prefix, "must be an object", block)
        s, d, a, h, k = _spec_block(block, where, prefix, keys)
        steps, drafted, accepted = steps + s, drafted + d, accepted + a
        hist = _add(hist, h) if hist is not None and h is not None else None
        if k is not None:
            fields["num_spec_tokens"] = k
        if id(obj) not in counted:  # usage belongs to the response, not to each choice
            counted.add(id(obj))
            tokens = _usage_tokens(obj, where)
            if tokens is None:
                have_output = False
            else:
                output += tokens
    return _summary(
        "tensorrt-llm",
        SRC_TRT,
        name,
        len(with_block),
        drafts=steps,
        steps=steps,
        draft_tokens=drafted,
        accepted_tokens=accepted,
        output_tokens=output if have_output and len(with_block) == len(choices) else None,
        accepted_length_counts=hist or None,
        per_position_acceptance=_survival(hist) if hist else None,
        mean_acceptance_length=1 + accepted / steps if steps else None,
        fields=fields,
        notes=[
            "TensorRT-LLM reports these only on the PyTorch backend, and leaves them out for a request that never drafted"
        ],
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


# ---------------------------------------------------------------- statistics and words


def summary_stats(rs: RunSummary) -> dict[str, Any]:
    """The statistics of `specviz.trace.summarize` that a run summary can give; None where undefined.

    acceptance_rate = accepted / drafted tokens; mean_accepted = accepted per drafting step (from
    the draft count, or from vLLM's and TensorRT-LLM's mean acceptance length, which is defined as
    1 + accepted / drafts); tokens_per_step = the engine's mean acceptance length, else output
    tokens / steps. Nothing drafted gives None, never 0.
    """
    drafted, accepted = rs["draft_tokens"], rs["accepted_tokens"]
    drafts, steps, tokens, mal = rs["drafts"], rs["steps"], rs["output_tokens"], rs["mean_acceptance_length"]
    rate = accepted / drafted if drafted and accepted is not None else None
    if drafts and accepted is not None:
        mean_accepted = accepted / drafts
    elif mal is not None and rs["source"] in (SRC_VLLM_LOG, SRC_VLLM_PROM, SRC_VLLM_RESPONSE, SRC_TRT):
        mean_accepted = mal - 1.0
    else:
        mean_accepted = None
    per_step = mal if mal is not None else (tokens / steps if tokens is not None and steps else None)
    return {
        "steps": steps,
        "tokens": tokens,
        "tokens_per_step": per_step,
        "drafted": drafted,
        "accepted": accepted,
        "acceptance_rate": rate,
        "mean_accepted": mean_accepted,
        "mean_acceptance_length": mal,
        "drafts": drafts,
        "per_position_acceptance": rs["per_position_acceptance"],
        "accepted_length_counts": rs["accepted_length_counts"],
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def describe(rs: RunSummary) -> list[str]:
    """Plain-word lines for the CLI and the pages: what was read, what each number means, what is missing."""
    st = summary_stats(rs)
    out = [
        f"{rs['name']}: {rs['source']} ({rs['engine']}), {rs['records']} record(s) read. A run summary: totals, not steps."
    ]
    if st["drafted"] is None:
        out.append("Drafted and accepted tokens: not given.")
    else:
        line = f"Drafted tokens: {st['drafted']:,}; accepted: {st['accepted']:,}"
        line += (
            f" (acceptance rate = accepted / drafted = {_pct(st['acceptance_rate'])})."
            if st["acceptance_rate"] is not None
            else " (nothing drafted: no acceptance rate)."
        )
        out.append(line)
    if st["drafts"] is not None:
        out.append(f"Drafting steps (verification passes that checked a draft): {st['drafts']:,}.")
    if st["mean_accepted"] is not None:
        out.append(f"Accepted drafts per drafting step: {st['mean_accepted']:.3f}.")
    if st["mean_acceptance_length"] is not None:
        words = MAL_DEFINITION.get(rs["source"], "as the engine defines it")
        out.append(f"Mean acceptance length: {st['mean_acceptance_length']:.3f} ({words}).")
    if st["tokens"] is not None:
        out.append(f"Output tokens: {st['tokens']:,}.")
    per_pos = st["per_position_acceptance"]
    if per_pos:
        shown = ", ".join(f"{j + 1}: {_pct(p)}" for j, p in enumerate(per_pos[:16]))
        more = f", … ({len(per_pos)} positions)" if len(per_pos) > 16 else ""
        out.append(f"Acceptance by draft position (share of drafting steps that accepted it): {shown}{more}.")
    hist = st["accepted_length_counts"]
    if hist:
        shown = ", ".join(f"{j}: {c:,}" for j, c in enumerate(hist[:17]))
        out.append(f"Steps by number of drafts accepted: {shown}{', …' if len(hist) > 17 else ''}.")
    if rs["timings"]:
        out.append("Timings: " + ", ".join(f"{k} = {v:,.2f}" for k, v in rs["timings"].items()) + ".")
    out.extend(f"Missing: {m}." for m in rs["missing"])
    return out
