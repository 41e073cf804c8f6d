"""`validate`: the whole trace (meta, prompt, steps, output); never raises. Steps and trees are
checked in specviz.trace.steps."""

from __future__ import annotations

import re

from specviz.trace.problems import _is_int, _Meta, _nonneg_int, _num, _Problems, short
from specviz.trace.schema import (
    FORMAT,
    MAX_PROBLEMS,
    RULE_NAMES,
    RULE_PARAMS,
    STOP_REASONS,
    VERSION,
    Step,
    output_ids,
)
from specviz.trace.steps import _check_step


def validate(trace: object, limit: int = MAX_PROBLEMS, *, strict: bool = True) -> list[str]:
    """Check structure and semantics. Returns at most `limit` problems, one line each; [] means valid.

    strict=False accepts a minimal trace: only the decisions are required, and whatever optional
    data is present is checked as usual (see the module docstring).

    Never raises, whatever it is given: a trace is untrusted input, and a validator that crashes
    on a bad file is no use to the person holding it.
    """
    return _guarded(trace, limit, strict=strict)


def _guarded(trace: object, limit: int, check_output: bool = True, strict: bool = True) -> list[str]:
    try:
        return _validate(trace, limit, check_output, strict)
    except Exception as exc:  # a bug here must not become a traceback; the fuzz tests hunt for these
        return [f"the validator failed on this trace ({type(exc).__name__}); please report it"]


def _validate(trace: object, limit: int = MAX_PROBLEMS, check_output: bool = True, strict: bool = True) -> list[str]:
    probs = _Problems(limit)
    if not isinstance(trace, dict):
        return [f"the trace must be a JSON object, got {short(trace)}"]
    if trace.get("format") != FORMAT:
        probs.add("format", f'must be "{FORMAT}", got {short(trace.get("format"))}')
    if not (_is_int(trace.get("version")) and trace.get("version") in (1, VERSION)):
        # 1 is read as it is (its steps are chains); loads() upgrades it to VERSION
        probs.add("version", f"must be 1 or {VERSION}, got {short(trace.get('version'))}")
    m = _check_meta(trace.get("meta"), probs, strict)
    prompt_len = _check_prompt(trace.get("prompt"), probs, strict)
    steps = trace.get("steps")
    if not isinstance(steps, list):
        probs.add("steps", f"must be an array, got {short(steps)}")
        return probs.items
    sound: list[Step] = []
    expected_ctx = prompt_len
    made = 0  # tokens emitted so far, after EOS and budget truncation
    ended: str | None = None  # why generation ended, once it has
    for k, step in enumerate(steps):
        if probs.full:
            break
        where = f"step {k}"
        if ended is not None:
            probs.add(where, f"comes after generation ended ({ended})")
            break
        if not _check_step(step, k, where, m, probs):
            expected_ctx = None
            continue
        sound.append(step)
        n = step["n_accepted"]
        ctx = step.get("context_length")  # missing only in a minimal trace
        if expected_ctx is not None and ctx is not None and ctx != expected_ctx:
            what = "the prompt length" if k == 0 else "previous + n_accepted + 1"
            probs.add(where, f"context_length is {ctx}, expected {expected_ctx} ({what})")
        expected_ctx = ctx + n + 1 if ctx is not None else None
        toks = [d["token_id"] for d in step["draft"][:n]]
        if step.get("next") is not None:
            toks.append(step["next"]["token_id"])
        for t in toks:
            if m.budget is not None and made >= m.budget:
                ended = f"max_new_tokens = {m.budget} reached in step {k}"
                break
            made += 1
            if m.eos is not None and t in m.eos:
                ended = f"EOS in step {k}"
                break
        if m.budget is not None and made >= m.budget:
            ended = ended or f"max_new_tokens = {m.budget} reached in step {k}"
        if "next" in step and step["next"] is None and ended is None:
            if m.eos is not None:
                probs.add(where, "next is null, but generation did not end in this step (no EOS, budget not reached)")
            ended = f"next is null in step {k}"
    if check_output and (m.strict or trace.get("output") is not None):  # lenient: finish() can rebuild it
        _check_output(trace.get("output"), sound, len(sound) == len(steps), m, probs)
    return probs.items


# model: a separate draft model; ngram: prompt lookup; feature: a head that reads the target's features
DRAFT_KINDS = ("model", "ngram", "feature")


def _check_meta(meta: object, probs: _Problems, strict: bool = True) -> _Meta:
    m = _Meta(strict=strict)
    if not isinstance(meta, dict):
        probs.add("meta", f"must be an object, got {short(meta)}")
        return m
    for role in ("target", "draft"):
        model = meta.get(role)
        if m.needs(role in meta) or (
            role in meta and not (isinstance(model, dict) and isinstance(model.get("name"), str))
        ):
            probs.add(f"meta.{role}", 'must be an object with a string "name"')
        elif isinstance(model, dict) and "kind" in model and model["kind"] not in DRAFT_KINDS:
            probs.add(f"meta.{role}.kind", f"must be {', '.join(DRAFT_KINDS)}, got {short(model['kind'])}")
    gamma = meta.get("gamma")
    if _is_int(gamma) and gamma >= 1:
        m.gamma = gamma
    elif m.needs("gamma" in meta) or "gamma" in meta:
        probs.add("meta.gamma", f"must be an integer >= 1, got {short(gamma)}")
    rule = meta.get("rule")
    if not m.strict and "rule" not in meta:
        pass  # a minimal trace need not say which rule decided: the decisions are not re-checked
    elif not isinstance(rule, dict) or not isinstance(rule.get("name"), str) or rule["name"] not in RULE_NAMES:
        name = rule.get("name") if isinstance(rule, dict) else rule
        probs.add("meta.rule", f'"name" must be one of {", ".join(RULE_NAMES)}, got {short(name)}')
    elif not isinstance(rule.get("params"), dict):
        probs.add("meta.rule.params", f"must be an object, got {short(rule.get('params'))}")
    else:
        params: dict[str, float] = {}
        need = RULE_PARAMS[rule["name"]]
        for key in dict.fromkeys(k for keys in RULE_PARAMS.values() for k in keys):  # every rule's, in order
            if key not in need and key not in rule["params"]:
                continue
            v = _num(rule["params"].get(key))
            if v is None or v < 0:
                probs.add("meta.rule.params", f'"{key}" must be a number >= 0, got {short(rule["params"].get(key))}')
            elif key in need:
                params[key] = v
        if "lossless" in rule and not isinstance(rule["lossless"], bool):
            probs.add("meta.rule.lossless", f"must be true or false, got {short(rule['lossless'])}")
        if len(params) == len(need):
            m.rule, m.params = rule["name"], params
    samp = meta.get("sampling")
    if not m.strict and "sampling" not in meta:
        pass
    elif not isinstance(samp, dict):
        probs.add("meta.sampling", f"must be an object, got {short(samp)}")
    else:
        temp, top_p = _num(samp.get("temperature")), _num(samp.get("top_p"))
        if temp is None or temp < 0:
            probs.add("meta.sampling.temperature", f"must be a number >= 0, got {short(samp.get('temperature'))}")
        if not _nonneg_int(samp.get("top_k")):
            probs.add("meta.sampling.top_k", f"must be an integer >= 0, got {short(samp.get('top_k'))}")
        if top_p is None or not 0 < top_p <= 1:
            probs.add("meta.sampling.top_p", f"must be a number in (0, 1], got {short(samp.get('top_p'))}")
    if "seed" not in meta:
        if m.strict:
            probs.add("meta.seed", "missing (an integer, or null for an unseeded run)")
    elif not (meta["seed"] is None or _is_int(meta["seed"])):
        probs.add("meta.seed", f"must be an integer or null, got {short(meta['seed'])}")
    budget = meta.get("max_new_tokens")
    if _is_int(budget) and budget >= 1:
        m.budget = budget
    elif m.needs("max_new_tokens" in meta) or "max_new_tokens" in meta:
        probs.add("meta.max_new_tokens", f"must be an integer >= 1, got {short(budget)}")
    if "eos_token_ids" in meta:
        eos = meta["eos_token_ids"]
        if isinstance(eos, list) and all(_nonneg_int(t) for t in eos):
            m.eos = set(eos)
        else:
            probs.add("meta.eos_token_ids", "must be an array of integers >= 0")
    if "top_k_logged" in meta:
        if _nonneg_int(meta["top_k_logged"]):
            m.top_k = meta["top_k_logged"]
        else:
            probs.add("meta.top_k_logged", f"must be an integer >= 0, got {short(meta['top_k_logged'])}")
    if "chat" in meta and not isinstance(meta["chat"], bool):
        probs.add("meta.chat", f"must be true or false, got {short(meta['chat'])}")
    for key in ("device", "dtype", "created"):
        if key in meta and not isinstance(meta[key], str):
            probs.add(f"meta.{key}", f"must be a string, got {short(meta[key])}")
    versions = meta.get("versions", {})
    if not (isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values())):
        probs.add("meta.versions", "must be an object of version strings")
    return m


def _check_prompt(prompt: object, probs: _Problems, strict: bool = True) -> int | None:
    if not isinstance(prompt, dict):
        probs.add("prompt", f"must be an object, got {short(prompt)}")
        return None
    if (strict or "text" in prompt) and not isinstance(prompt.get("text"), str):
        probs.add("prompt.text", f"must be a string, got {short(prompt.get('text'))}")
    ids = prompt.get("token_ids")
    if not strict and "token_ids" not in prompt:
        return None  # unknown prompt length: the context-length chain is checked from step to step only
    if not (isinstance(ids, list) and all(_nonneg_int(t) for t in ids)):
        probs.add("prompt.token_ids", "must be an array of integers >= 0")
        return None
    return len(ids)


def _check_output(out: object, steps: list[Step], complete: bool, m: _Meta, probs: _Problems) -> None:
    if out is None:
        probs.add("output", "missing (a run that stopped early still has one, with stop_reason stopped)")
        return
    if not isinstance(out, dict):
        probs.add("output", f"must be an object, got {short(out)}")
        return
    ids = out.get("token_ids")
    if not (isinstance(ids, list) and all(_nonneg_int(t) for t in ids)):
        probs.add("output.token_ids", "must be an array of integers >= 0")
        return
    reason = out.get("stop_reason")
    if reason not in STOP_REASONS:
        probs.add("output.stop_reason", f"must be one of {', '.join(STOP_REASONS)}, got {short(reason)}")
    elif reason == "eos" and m.eos is not None and not (ids and ids[-1] in m.eos):
        probs.add("output.stop_reason", "is eos but the output does not end with an EOS token")
    elif reason == "max_new_tokens" and m.budget is not None and len(ids) != m.budget:
        probs.add("output.stop_reason", f"is max_new_tokens but the output has {len(ids)} of {m.budget} tokens")
    if not isinstance(out.get("text"), str):
        probs.add("output.text", f"must be a string, got {short(out.get('text'))}")
    if "recovered" in out and not isinstance(out["recovered"], bool):
        probs.add("output.recovered", f"must be true or false, got {short(out['recovered'])}")
    pending = out.get("pending_bytes")
    if pending is not None and not (
        isinstance(pending, str) and len(pending) <= 6 and re.fullmatch(r"(?:[0-9a-f]{2})+", pending)
    ):
        probs.add("output.pending_bytes", f"must be 1 to 3 bytes in lowercase hex, got {short(pending)}")
    if m.budget is not None and len(ids) > m.budget:
        probs.add("output.token_ids", f"{len(ids)} tokens, more than max_new_tokens = {m.budget}")
    if complete and not probs.full:
        want = output_ids(steps, m.eos or (), m.budget)
        if not m.strict and m.budget is None:
            want = want[: len(ids)]  # a minimal trace may have been cut by a budget it does not record
        if ids != want:
            at = next((i for i, (a, b) in enumerate(zip(ids, want, strict=False)) if a != b), min(len(ids), len(want)))
            probs.add(
                "output.token_ids",
                f"differ from the steps' accepted drafts + next tokens at token {at} "
                f"({len(ids)} tokens vs {len(want)} reconstructed)",
            )
