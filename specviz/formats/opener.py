"""The upload opener: what a file is (a specviz trace, an event log, a serving engine's run summary)
and reading it as that. Every function treats its input as hostile and raises only TraceError, whose
message, for a file of no known kind, lists the kinds that are read.

Imports: the standard library, specviz.trace and the other specviz.formats modules.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from specviz.formats.eventlog import loads_eventlog
from specviz.formats.runsummary import RunSummary, loads_summary, sniff_summary
from specviz.trace import GZIP_MAGIC, MAX_BYTES, Trace, TraceError, loads, read_file

__all__ = ["ACCEPTED_KINDS", "head_text", "load_any", "load_record", "loads_any", "loads_record", "sniff"]


def load_any(path: str | Path, max_bytes: int = MAX_BYTES) -> Trace:
    """A native trace or an event log from a file, whichever it is (what the app's upload accepts)."""
    return loads_any(read_file(path, max_bytes), Path(path).name, max_bytes)


def sniff(data: bytes | str, name: str = "") -> str:
    """ "trace" or "eventlog": what these bytes most likely are (by name, then by content)."""
    lower = name.lower()
    if lower.endswith((".csv", ".csv.gz", ".tsv")):
        return "eventlog"
    head = head_text(data)
    if head is None:
        return "trace"  # damaged gzip: let the trace reader say so
    if not head.startswith("{"):
        first = head.split("\n", 1)[0].lower()
        return "eventlog" if "step" in first and "draft_token" in first else "trace"
    first = head.split("\n", 1)[0]
    return "eventlog" if '"draft_token"' in first and '"format"' not in first else "trace"


def head_text(data: bytes | str) -> str | None:
    """The first 4 KB of the text (gunzipped), or None for damaged gzip."""
    raw = data[:4096].encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data[:65536])
    if raw[:2] == GZIP_MAGIC:
        try:  # only the beginning is needed: decompress at most 4 KB of it
            raw = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw, 4096)
        except zlib.error:
            return None
    return raw[:4096].decode("utf-8", "replace").lstrip("\ufeff \t\r\n")


ACCEPTED_KINDS = (
    "a specviz trace (.json, .json.gz, .jsonl), an event log (CSV or JSONL rows, one per drafted token: "
    "docs/EVENTLOG.md), or a serving engine's run summary (vLLM 'SpecDecoding metrics' log lines or its "
    "/metrics text, SGLang meta_info, llama.cpp timings or speculative-example statistics, TensorRT-LLM "
    "speculative_decoding)"
)


def loads_record(data: bytes | str, name: str = "upload", max_bytes: int = MAX_BYTES) -> Trace | RunSummary:
    """Whatever specviz reads: a trace, an event log (as a minimal trace) or a serving engine's run
    summary (specviz.formats.runsummary). Raises only TraceError; for a file of none of these kinds the
    message names the kinds that are accepted."""
    if sniff_summary(data, name) is not None:
        return loads_summary(data, name, max_bytes)
    try:
        return loads_any(data, name, max_bytes)
    except TraceError as exc:
        head = head_text(data) or ""
        if "specviz-trace" in head or sniff(data, name) == "eventlog":
            raise  # one of ours, damaged: its own message says where
        raise TraceError(f"{exc}. specviz reads {ACCEPTED_KINDS}") from None


def load_record(path: str | Path, max_bytes: int = MAX_BYTES) -> Trace | RunSummary:
    return loads_record(read_file(path, max_bytes), Path(path).name, max_bytes)


def loads_any(data: bytes | str, name: str = "upload", max_bytes: int = MAX_BYTES) -> Trace:
    """A native trace (.json, .json.gz, .jsonl) or an event log (.csv, JSONL rows), whichever it is."""
    if sniff(data, name) == "eventlog":
        return loads_eventlog(data, name, max_bytes)
    return loads(data, name, max_bytes)
