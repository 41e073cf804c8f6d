"""Regenerate tests/data: a valid tiny trace and a corpus of broken ones, one defect each.

Run from the repository root when the trace format changes: `.venv/bin/python -m tests.data.make_corpus`.
The valid trace is recorded with the tiny models of tests/conftest.py; each broken file is that
trace with one thing wrong, and broken/EXPECTED.json maps its name to part of the message
that `validate` (or `loads`) must give. valid/minimal.json is the same run with only what a
minimal trace needs (validate(strict=False) accepts it, the strict default does not), and
broken_eventlog/ holds event logs with one defect each (`--eventlog` rewrites only those).
"""

from __future__ import annotations

import copy
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import torch

from specviz.core.decoder import DecodeConfig
from specviz.core.rules import make_rule
from specviz.core.warp import Sampling
from specviz.drafters.model import ModelDrafter
from specviz.models.lm import CausalLM
from specviz.run.record import Recording
from specviz.trace import dumps, validate
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
    edit(
        "version_0.json",
        "trace version 0 is not supported; this specviz reads version 2",
        lambda t: t.update(version=0),
    )
    edit("no_version.json", 'has no "version"', lambda t: t.pop("version"))
    put(
        "lone_surrogate.json",
        text.replace(tok, tok + "\\ud800", 1).encode(),
        "half of a surrogate pair",
    )
    edit("minimal_in_strict_mode.json", "timing_ms must be an object", minimal)
    (broken / "EXPECTED.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    mini = copy.deepcopy(trace)
    minimal(mini)
    (valid / "minimal.json").write_text(json.dumps(mini, ensure_ascii=False), encoding="utf-8")
    print(f"valid trace: {len(steps)} steps; {len(expected)} broken files")
    eventlog_corpus()


def minimal(t: dict[str, Any]) -> None:
    """Strip a trace to what a minimal one needs: the drafts' tokens and decisions, n_accepted, next."""
    for s in t["steps"]:
        s.pop("timing_ms")
        for d in s["draft"]:
            d.pop("top")
        for v in s["verify"]:
            for key in ("top", "r", "accept_prob", "ratio", "cutoff"):
                v.pop(key, None)
        if s["next"]:
            s["next"].pop("top")
            s["next"].pop("prob", None)


EVENTLOG_HEADER = "step,position,draft_token,q,p,r,accepted,next_token,next_kind,draft_ms,verify_ms\n"
EVENTLOG_GOOD = [
    "0,0, the,0.9,0.85,0.31,true, rug,correction,12.5,20.1",
    "0,1, cat,0.8,0.9,0.52,true, rug,correction,12.5,20.1",
    "0,2, mat,0.42,0.09,0.81,false, rug,correction,12.5,20.1",
    "1,0, on,0.5,0.6,0.1,true, the,bonus,10,20",
]


def eventlog_corpus() -> None:
    """broken_eventlog/: one defect per file, and EXPECTED.json with part of the message loads_eventlog gives."""
    out = HERE / "broken_eventlog"
    out.mkdir(exist_ok=True)
    for f in out.iterdir():
        f.unlink()
    expected: dict[str, str] = {}

    def put(name: str, body: str | bytes, message: str) -> None:
        (out / name).write_bytes(body if isinstance(body, bytes) else body.encode())
        expected[name] = message

    def rows(change: int, cell: int, value: str) -> str:
        lines = [line.split(",") for line in EVENTLOG_GOOD]
        lines[change][cell] = value
        return EVENTLOG_HEADER + "\n".join(",".join(x) for x in lines) + "\n"

    put("no_draft_token.csv", "step,position,token,accepted\n0,0,a,true\n", "no 'draft_token' column")
    put("q_above_one.csv", rows(1, 3, "1.7"), "line 3, column q: must be a probability in [0, 1], got '1.7'")
    put("p_nan.csv", rows(2, 4, "NaN"), "line 4, column p: must be a probability")
    put("negative_ms.csv", rows(3, 9, "-4"), "line 5, column draft_ms: must be milliseconds >= 0")
    put("accepted_word.csv", rows(0, 6, "perhaps"), "line 2, column accepted: must be true or false")
    put("r_contradicts.csv", rows(0, 5, "0.99"), "line 2 (step 0, position 0): accepted is true but r = 0.99")
    put("accepted_after_reject.csv", rows(1, 6, "false").replace("0.81,false", "0.81,true"), "true after the rejection")
    put("position_gap.csv", rows(2, 1, "3"), "line 4: position 3, but position 2 is missing")
    put("next_kind_wrong.csv", rows(3, 8, "correction"), "so it is a bonus")
    put("unclosed_quote.csv", EVENTLOG_HEADER + '0,0,"the,0.9\n', "not valid CSV")
    put("too_many_fields.csv", rows(0, 10, "20.1,oops"), "line 2: 12 fields, but the header names 11")
    put("binary.csv", b"step,position,draft_token,accepted\n0,0,\xff\xfe,true\n", "not UTF-8")
    put("row_not_object.jsonl", '{"step":0,"position":0,"draft_token":"a","accepted":true}\n[]\n', "line 2: each line")
    put("token_not_text.jsonl", '{"step":0,"position":0,"draft_token":7,"accepted":true}\n', "must be text, got 7")
    (out / "EXPECTED.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    print(f"{len(expected)} broken event logs")


if __name__ == "__main__":
    if "--eventlog" in sys.argv[1:]:
        eventlog_corpus()
    else:
        main()
