"""SGLang: meta_info of /generate responses."""

from __future__ import annotations

from typing import Any

from specviz.formats.runsummary._common import (
    MAX_POSITIONS,
    SRC_SGLANG,
    RunSummary,
    _add,
    _bad,
    _check_accepted,
    _count,
    _histogram,
    _number,
    _step_summary,
    _where,
)
from specviz.formats.runsummary._json import _id, _last_per_key


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
    return _step_summary(
        "sglang",
        SRC_SGLANG,
        name,
        len(records),
        steps=steps,
        drafted=drafted,
        accepted=accepted,
        output=output if have_output else None,
        hist=hist,
        mean_acceptance_length=output / steps if have_output and steps else None,
        fields=fields,
        notes=[
            "SGLang counts proposed drafts as steps x (speculative_num_draft_tokens - 1); with a draft tree "
            "these are tree nodes, not one chain"
        ],
    )
