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

import re
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specviz.formats.runsummary._common import (
    ENGINES,
    FORMAT,
    MAX_POSITIONS,
    MAX_RECORDS,
    SNIFF_BYTES,
    SUMMARY_KINDS,
    RunSummary,
    _where,
)

# also re-exported, outside __all__: the source names and notes that callers compare a summary with
from specviz.formats.runsummary._common import NO_STEPPING as NO_STEPPING
from specviz.formats.runsummary._common import NO_TEXT as NO_TEXT
from specviz.formats.runsummary._common import SRC_LLAMA_EXAMPLE as SRC_LLAMA_EXAMPLE
from specviz.formats.runsummary._common import SRC_LLAMA_TIMINGS as SRC_LLAMA_TIMINGS
from specviz.formats.runsummary._common import SRC_SGLANG as SRC_SGLANG
from specviz.formats.runsummary._common import SRC_TRT as SRC_TRT
from specviz.formats.runsummary._common import SRC_TRT_AVG as SRC_TRT_AVG
from specviz.formats.runsummary._common import SRC_VLLM_LOG as SRC_VLLM_LOG
from specviz.formats.runsummary._common import SRC_VLLM_PROM as SRC_VLLM_PROM
from specviz.formats.runsummary._common import SRC_VLLM_RESPONSE as SRC_VLLM_RESPONSE
from specviz.formats.runsummary._common import SRC_VLLM_V0_LOG as SRC_VLLM_V0_LOG
from specviz.formats.runsummary._json import _json_values, _records
from specviz.formats.runsummary._stats import describe, summary_stats
from specviz.formats.runsummary.llamacpp import _LLAMA_SNIFF, _llama_example, _llama_timings
from specviz.formats.runsummary.sglang import _sglang
from specviz.formats.runsummary.trtllm import _trtllm
from specviz.formats.runsummary.vllm import _PROM_SNIFF, _V0, _V1, _vllm_log, _vllm_prometheus, _vllm_responses
from specviz.trace import GZIP_MAGIC, MAX_BYTES, TraceError, read_file, read_text

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
    but kept for symmetry with `specviz.formats.opener.sniff`. A native specviz trace gives None.
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
        raise _not_a_summary(name, '"specviz-trace"' in text[:4096])
    if kind == "vllm-log":
        return _vllm_log(text, name)
    if kind == "vllm-prom":
        return _vllm_prometheus(text, name)
    return _llama_example(text, name)


def _not_a_summary(name: str, trace: bool) -> TraceError:
    hint = " (it is a specviz trace: open it as a trace)" if trace else ""
    return TraceError(f"{name} is none of the formats specviz reads as a run summary{hint}: {SUMMARY_KINDS}")


def _text_kind(text: str) -> str | None:
    if _V1 in text or _V0 in text:
        return "vllm-log"
    if _PROM_SNIFF.search(text):
        return "vllm-prom"
    if _LLAMA_SNIFF.search(text) and re.search(r"(?:^|\s)n_accept\s*=", text, re.M):
        return "llama-example"
    return None


# ---------------------------------------------------------------- JSON formats


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
            raise TraceError(f"{name}: no event of the stream carries speculative-decoding statistics: {SUMMARY_KINDS}")
        trace = any(obj.get("format") == "specviz-trace" for _, obj in records)
        raise _not_a_summary(name, trace)
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
