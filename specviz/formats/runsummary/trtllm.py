"""TensorRT-LLM: the per-choice speculative_decoding object and avg_decoded_tokens_per_iter of
trtllm-serve responses."""

from __future__ import annotations

from typing import Any

from specviz.formats.runsummary._common import (
    MAX_POSITIONS,
    MAX_RECORDS,
    SRC_TRT,
    SRC_TRT_AVG,
    RunSummary,
    _add,
    _bad,
    _number,
    _step_summary,
    _summary,
    _where,
)
from specviz.formats.runsummary._json import _id, _spec_block, _usage_tokens
from specviz.trace import TraceError


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
    return _step_summary(
        "tensorrt-llm",
        SRC_TRT,
        name,
        len(with_block),
        steps=steps,
        drafted=drafted,
        accepted=accepted,
        output=output if have_output and len(with_block) == len(choices) else None,
        hist=hist,
        mean_acceptance_length=1 + accepted / steps if steps else None,
        fields=fields,
        notes=[
            "TensorRT-LLM reports these only on the PyTorch backend, and leaves them out for a request that never drafted"
        ],
    )
