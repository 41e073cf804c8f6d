"""Regenerate tests/data: a valid tiny trace and a corpus of broken ones, one defect each.

Run from the repository root when the trace format changes: `.venv/bin/python -m tests.data.make_corpus`.
The valid trace is recorded with the tiny models of tests/conftest.py; each broken file is that
trace with one thing wrong, and broken/EXPECTED.json maps its name to part of the message
that `validate` (or `loads`) must give.
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import torch

from specviz.decoder import DecodeConfig
from specviz.drafters import ModelDrafter
from specviz.models import CausalLM
from specviz.record import Recording
from specviz.rules import make_rule
from specviz.trace import dumps, validate
from specviz.warp import Sampling
from tests.conftest import make_model, make_tokenizer, perturbed

HERE = Path(__file__).resolve().parent
PROMPT = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]  # <bos> the cat sat on the mat the cat sat


def record(seed: int) -> dict[str, Any]:
    tok = make_tokenizer()
    target = CausalLM(make_model(0, len(tok)), tok, "tiny-target", torch.device("cpu"))
    draft = CausalLM(perturbed(target.model, 1, 0.5), tok, "tiny-draft", torch.device("cpu"))
    cfg = DecodeConfig(
        gamma=3, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=10, seed=seed, top_k_log=4
    )
    rec = Recording(target, ModelDrafter(draft, target.vocab_size), tok.decode(PROMPT), cfg, prompt_ids=PROMPT)
    trace: dict[str, Any] = rec.run()  # type: ignore[assignment]
    # stable bytes across regenerations: no wall-clock noise
    trace["meta"]["created"] = "2026-01-01T00:00:00Z"
    trace["meta"]["versions"] = {"python": "3.11", "torch": "2.13.0", "transformers": "5.24.0"}
    for s in trace["steps"]:
        s["timing_ms"] = {"draft": 1.5, "verify": 2.25}
    return trace


def good_enough(t: dict[str, Any]) -> bool:
    """The valid trace must show every case the broken files tamper with."""
    steps = t["steps"]
    kinds = {s["next"]["kind"] for s in steps if s["next"]}
    nulls = any(v["accepted"] is None for s in steps for v in s["verify"])
    soft = any(v["accepted"] and v["accept_prob"] < 0.9 for s in steps for v in s["verify"])
    return kinds == {"bonus", "correction"} and nulls and soft and len(steps) >= 4 and validate(t) == []


def main() -> None:
    torch.set_num_threads(1)
    trace = next(t for t in map(record, range(100)) if good_enough(t))
    valid, broken = HERE / "valid", HERE / "broken"
    valid.mkdir(exist_ok=True)
    broken.mkdir(exist_ok=True)
    for f in broken.iterdir():
        f.unlink()
    text = dumps(trace)  # type: ignore[arg-type]
    (valid / "tiny.json").write_text(text, encoding="utf-8")
    # a JSONL run killed mid-write: header, steps, the last step cut off, no output line
    lines = [json.dumps({k: v for k, v in trace.items() if k not in ("steps", "output")})]
    lines += [json.dumps(s) for s in trace["steps"]]
    (valid / "interrupted.jsonl").write_text("\n".join(lines)[:-25], encoding="utf-8")

    expected: dict[str, str] = {}

    def put(name: str, data: bytes | dict[str, Any], message: str) -> None:
        if isinstance(data, dict):
            data = json.dumps(data, ensure_ascii=False).encode()
        (broken / name).write_bytes(data)
        expected[name] = message

    def edit(name: str, message: str, change: Any) -> None:
        t = copy.deepcopy(trace)
        change(t)
        put(name, t, message)

    steps = trace["steps"]
    rej = next(k for k, s in enumerate(steps) if s["n_accepted"] < len(s["draft"]) - 1)  # a rejection, then a null
    corr = next(k for k, s in enumerate(steps) if s["next"]["kind"] == "correction")
    soft = next(
        (k, j)
        for k, s in enumerate(steps)
        for j, v in enumerate(s["verify"])
        if v["accepted"] and v["accept_prob"] < 0.9
    )

    edit("bad_format.json", "not a specviz trace", lambda t: t.update(format="other-trace"))
    edit("version_99.json", "trace version 99 is not supported", lambda t: t.update(version=99))
    put("nan_prob.json", text.replace('"p":', '"p":NaN,"p_was":', 1).encode(), "NaN")
    put("huge_number.json", text.replace('"q":', '"q":1e999,"q_was":', 1).encode(), "too large to be a float")
    put("huge_int.json", text.replace('"token_id":', '"token_id":' + "7" * 5000 + ',"was":', 1).encode(), "digits")

    def set_at(k: int, j: int, part: str, key: str, value: Any) -> Any:
        return lambda t: t["steps"][k][part][j].update({key: value})

    edit(
        "p_above_one.json",
        "step 0, position 0: p must be a probability in [0, 1], got 1.5",
        set_at(0, 0, "verify", "p", 1.5),
    )
    edit("negative_q.json", "step 1, position 1: q must be a probability", set_at(1, 1, "draft", "q", -0.25))
    k, j = soft
    a = steps[k]["verify"][j]["accept_prob"]
    edit(
        "r_inconsistent.json",
        f"step {k}, position {j}: accepted is true but r =",
        set_at(k, j, "verify", "r", (a + 1) / 2),
    )
    n = steps[rej]["n_accepted"]
    edit(
        "n_accepted_mismatch.json",
        f"step {rej}: n_accepted is {n + 1} but {n} leading drafts",
        lambda t: t["steps"][rej].update(n_accepted=n + 1),
    )
    edit(
        "next_kind_wrong.json",
        f"step {corr}: next.kind is 'bonus' but should be 'correction'",
        lambda t: t["steps"][corr]["next"].update(kind="bonus"),
    )
    edit(
        "context_chain.json",
        "step 2: context_length is",
        lambda t: t["steps"][2].update(context_length=t["steps"][2]["context_length"] + 1),
    )

    def swap_output(t: dict[str, Any]) -> None:
        t["output"]["token_ids"][1] = (t["output"]["token_ids"][1] + 1) % 44

    edit("output_mismatch.json", "output.token_ids: differ from the steps", swap_output)
    edit(
        "accepted_after_rejection.json",
        "accepted must be null after the first rejection",
        set_at(rej, steps[rej]["n_accepted"] + 1, "verify", "accepted", True),
    )
    edit(
        "next_null_midway.json",
        "step 1: next is null, but generation did not end",
        lambda t: t["steps"][1].update(next=None),
    )
    edit("stop_reason_wrong.json", "stop_reason: is eos but", lambda t: t["output"].update(stop_reason="eos"))
    edit("gamma_string.json", "meta.gamma: must be an integer >= 1, got '3'", lambda t: t["meta"].update(gamma="3"))
    edit("bool_n_accepted.json", "n_accepted must be an integer", lambda t: t["steps"][0].update(n_accepted=True))
    put("truncated.json.gz", gzip.compress(text.encode(), mtime=0)[:-300], "gzip-compressed but is damaged")
    put("truncated.json", text.encode()[: len(text) * 3 // 5], "not valid JSON")
    tok = '"token":"' + steps[0]["draft"][0]["token"]
    put("invalid_utf8.json", text.replace(tok, tok + "\udcff", 1).encode("utf-8", "surrogateescape"), "not UTF-8")
    put(
        "deep_nesting.json",
        b'{"format":"specviz-trace","meta":' + b"[" * 5000 + b"]" * 5000 + b"}",
        "nested too deeply",
    )
    put("empty.json", b"", "is empty")
    put(
        "zip_renamed.json",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(32, 127)),
        "does not start with a JSON object",
    )
    jl = [json.dumps({k: v for k, v in trace.items() if k not in ("steps", "output")})]
    jl += [json.dumps(s) for s in steps] + [json.dumps({"output": trace["output"]})]
    jl[3] = jl[3][: len(jl[3]) // 2]  # file line 4
    put("corrupt_line.jsonl", ("\n".join(jl) + "\n").encode(), "line 4: not valid JSON")
    (broken / "EXPECTED.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    print(f"valid trace: {len(steps)} steps; {len(expected)} broken files")


if __name__ == "__main__":
    main()
