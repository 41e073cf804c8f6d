"""vLLM: the 'SpecDecoding metrics' (V1) and 'Speculative metrics' (V0) log lines, the
vllm:spec_decode_* counters of /metrics, and per-request metrics.speculative_decoding."""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

from specviz.formats.runsummary._common import (
    MAX_COUNT,
    MAX_FLOAT,
    MAX_POSITIONS,
    MAX_RECORDS,
    SRC_VLLM_LOG,
    SRC_VLLM_PROM,
    SRC_VLLM_RESPONSE,
    SRC_VLLM_V0_LOG,
    RunSummary,
    _add,
    _bad,
    _check_accepted,
    _lines,
    _partial_last,
    _step_summary,
    _summary,
    _text_count,
    _text_number,
    _where,
)
from specviz.formats.runsummary._json import _id, _last_per_key, _per_step, _spec_block, _usage_tokens
from specviz.trace import TraceError

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


def _nan(s: str) -> bool:
    """A printed nan (vLLM's value for a rate of an interval that drafted nothing)."""
    return s.lower().lstrip("+-") == "nan"


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
        if empty and _nan(s):
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
        if not (empty and all(_nan(s) for s in items)):
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
        if m is not None and not (out["drafted"] == 0 and _nan(m.group(1))):
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
    return _step_summary(
        "vllm",
        SRC_VLLM_RESPONSE,
        name,
        used,
        steps=steps,
        drafted=drafted,
        accepted=accepted,
        output=output if have_output else None,
        hist=hist,
        mean_acceptance_length=1 + accepted / steps if steps else None,
        fields=fields,
        notes=[
            "vLLM leaves out steps that scheduled no draft tokens: the histogram does not show how often drafting was skipped"
        ],
    )
