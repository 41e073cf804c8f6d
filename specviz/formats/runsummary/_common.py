"""The parts every run-summary parser shares: the limits, the source names, the RunSummary record,
the checks that turn an engine's values into counts and numbers (raising only TraceError), and the
builder that fills in what a summary is missing."""

from __future__ import annotations

import math
import re
from typing import Any, TypedDict

from specviz.trace import TraceError, short

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

SUMMARY_KINDS = (
    "vLLM 'SpecDecoding metrics:' or 'Speculative metrics:' log lines, vLLM /metrics (Prometheus) text, "
    "vLLM or TensorRT-LLM OpenAI responses with speculative-decoding stats, SGLang /generate responses "
    "(meta_info.spec_verify_ct), llama.cpp server responses (timings), or the llama.cpp speculative "
    "example's printed statistics"
)


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


# ---------------------------------------------------------------- values


def _where(name: str, line: int) -> str:
    return f"{name} line {line}"


def _bad(where: str, field: str, problem: str, value: object = ..., hint: str = "") -> TraceError:
    got = "" if value is ... else f", got {short(value)}"
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


def _step_summary(
    engine: str,
    source: str,
    name: str,
    records: int,
    *,
    steps: int,
    drafted: int | None,
    accepted: int | None,
    output: int | None,
    hist: list[int] | None,
    mean_acceptance_length: float | None,
    fields: dict[str, Any],
    notes: list[str],
) -> RunSummary:
    """A summary of per-request statistics that count verification steps (one draft each) and may
    carry a histogram of accepted lengths: SGLang, vLLM responses, TensorRT-LLM."""
    return _summary(
        engine,
        source,
        name,
        records,
        drafts=steps,
        steps=steps,
        draft_tokens=drafted,
        accepted_tokens=accepted,
        output_tokens=output,
        accepted_length_counts=hist or None,
        per_position_acceptance=_survival(hist) if hist else None,
        mean_acceptance_length=mean_acceptance_length,
        fields=fields,
        notes=notes,
    )


# ---------------------------------------------------------------- text


def _lines(text: str) -> list[str]:
    return text.split("\n")  # "\n" only: a log may hold U+2028 inside generated text


def _partial_last(i: int, lines: list[str], text: str) -> bool:
    """True for the last line of a file that does not end in a newline: a log cut off mid-write."""
    return i == len(lines) - 1 and not text.endswith("\n")
