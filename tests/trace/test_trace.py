"""The trace format: round trips, hostile input, validation of semantics, the schema, summaries."""

from __future__ import annotations

import copy
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from specviz.core.decoder import DecodeConfig
from specviz.core.rules import KINDS, RULES, make_rule
from specviz.core.warp import Sampling
from specviz.drafters.model import ModelDrafter
from specviz.drafters.ngram import LookupFallback, NgramDrafter
from specviz.models.lm import CausalLM
from specviz.run.record import Recording
from specviz.trace import (
    MAX_BYTES,
    JsonlWriter,
    TraceError,
    _validate,
    byte_label,
    dump,
    dumps,
    finish,
    load,
    loads,
    output_ids,
    summarize,
    validate,
)
from specviz.trace.schema import RULE_NAMES, RULE_PARAMS

DATA = Path(__file__).parents[1] / "data"
BROKEN = DATA / "broken"
EXPECTED: dict[str, str] = json.loads((BROKEN / "EXPECTED.json").read_text())
VALID = DATA / "valid" / "tiny.json"
BASE: dict[str, Any] = json.loads(VALID.read_text())
SCHEMA = jsonschema.Draft202012Validator(
    json.loads((Path(__file__).parents[2] / "docs" / "trace.schema.json").read_text())
)
PROMPT = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]
# 300 keeps CI fast; SPECVIZ_FUZZ_EXAMPLES=20000 hunts deeper
FUZZ = settings(
    max_examples=int(os.environ.get("SPECVIZ_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def problems_of(path: Path) -> list[str]:
    try:
        return validate(load(path))
    except TraceError as exc:
        return [str(exc)]


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def record(
    target: CausalLM, draft: CausalLM | None, rule: str = "sampling", lookup: float = 0.0, **kw: Any
) -> Recording:
    sampling = Sampling(0) if rule == "greedy" else Sampling(1.0)
    cfg = DecodeConfig(gamma=3, rule=make_rule(rule), sampling=sampling, max_new_tokens=12, seed=kw.pop("seed", 0))
    fallback = LookupFallback(lookup) if lookup else None
    drafter = (
        ModelDrafter(draft, target.vocab_size, lookup=fallback)
        if draft is not None
        else NgramDrafter(target.vocab_size)
    )
    return Recording(target, drafter, "", cfg, prompt_ids=PROMPT, **kw)


# ---------------------------------------------------------------- the committed corpus


def test_the_formats_rules_are_the_rules_own() -> None:
    """specviz.core.rules.KINDS is the rules' one home; the format, free of torch, keeps a copy of their
    names and parameters, and docs/trace.schema.json its own: a new rule fails here until both know it."""
    assert RULE_NAMES == RULES
    assert {name: tuple(kind.defaults) for name, kind in KINDS.items()} == RULE_PARAMS
    rule = SCHEMA.schema["$defs"]["meta"]["properties"]["rule"]
    assert tuple(rule["properties"]["name"]["enum"]) == RULES
    assert set(rule["properties"]["params"]["properties"]) == {k for kind in KINDS.values() for k in kind.defaults}
    required = {
        c["if"]["properties"]["name"]["const"]: c["then"]["properties"]["params"]["required"] for c in rule["allOf"]
    }
    assert required == {name: list(kind.defaults) for name, kind in KINDS.items() if kind.defaults}


def test_valid_files_are_valid() -> None:
    assert problems_of(VALID) == []
    assert SCHEMA.is_valid(BASE)


def test_every_broken_file_has_an_expectation() -> None:
    assert sorted(p.name for p in BROKEN.iterdir() if p.name != "EXPECTED.json") == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_file_is_reported(name: str) -> None:
    found = problems_of(BROKEN / name)
    assert found, f"{name} passed validation"
    assert any(EXPECTED[name] in line for line in found), found
    assert all("\n" not in line for line in found)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".json", ".json.gz", ".jsonl"])
def test_dump_load_round_trip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    dump(BASE, path)  # type: ignore[arg-type]
    assert load(path) == BASE
    assert loads(path.read_bytes()) == BASE


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    dump(BASE, tmp_path / "a.json.gz")  # type: ignore[arg-type]
    dump(BASE, tmp_path / "b.json.gz")  # type: ignore[arg-type]
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()


def test_jsonl_keeps_tokens_with_unicode_line_separators(tmp_path: Path) -> None:
    """JSON leaves U+2028 and U+0085 unescaped; the JSONL reader must split on "\\n" only."""
    t = base()
    odd = "a\u2028b\x85c\u2029d\r"
    t["steps"][0]["draft"][0]["token"] = odd
    t["prompt"]["text"] = odd
    dump(t, tmp_path / "t.jsonl")  # type: ignore[arg-type]
    assert load(tmp_path / "t.jsonl") == t


def test_recording_streams_jsonl(tmp_path: Path, target: CausalLM, draft_lm: CausalLM) -> None:
    rec = record(target, draft_lm)
    path = tmp_path / "run.jsonl"
    rec.jsonl = JsonlWriter(path, rec.trace)
    with rec.jsonl:
        trace = rec.run()
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + len(trace["steps"]) + 1
    assert "steps" not in json.loads(lines[0]) and set(json.loads(lines[-1])) == {"output"}
    assert load(path) == trace
    assert validate(trace) == []


def test_interrupted_jsonl_replays(tmp_path: Path, target: CausalLM, draft_lm: CausalLM) -> None:
    """A run killed before its output line (or mid-line) still loads, with output rebuilt from the steps."""
    rec = record(target, draft_lm)
    full = tmp_path / "full.jsonl"
    rec.jsonl = JsonlWriter(full, rec.trace)
    with rec.jsonl:
        trace = rec.run()
    lines = full.read_text().split("\n")[:-2]  # drop the output line (and the empty string after it)
    no_output = tmp_path / "no_output.jsonl"
    no_output.write_text("\n".join(lines) + "\n")
    got = load(no_output)
    assert got["steps"] == trace["steps"]
    assert got["output"]["token_ids"] == trace["output"]["token_ids"]
    assert got["output"]["stop_reason"] == trace["output"]["stop_reason"]  # inferred from the steps
    assert got["output"]["recovered"] is True
    assert validate(got) == [] and SCHEMA.is_valid(got)

    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines)[:-10])  # the last step line cut mid-write
    got = load(cut)
    assert got["steps"] == trace["steps"][:-1]
    assert got["output"]["stop_reason"] == "stopped" and got["output"]["recovered"] is True
    assert validate(got) == []
    assert summarize(got)["steps"] == len(trace["steps"]) - 1


def test_committed_interrupted_jsonl() -> None:
    t = load(DATA / "valid" / "interrupted.jsonl")
    assert t["output"]["recovered"] is True and t["steps"] == BASE["steps"][:-1]
    assert validate(t) == []


def test_interrupted_jsonl_with_bad_steps_keeps_output_missing() -> None:
    lines = [json.dumps({k: v for k, v in BASE.items() if k not in ("steps", "output")})]
    bad = copy.deepcopy(BASE["steps"][0])
    bad["n_accepted"] = 99
    text = "\n".join([*lines, json.dumps(bad)]) + "\n"
    t = loads(text.encode())
    assert "output" not in t
    found = validate(t)
    assert any("n_accepted" in p for p in found) and any(p.startswith("output: missing") for p in found)


def test_stopping_a_recording_early_gives_a_complete_jsonl(
    tmp_path: Path, target: CausalLM, draft_lm: CausalLM
) -> None:
    rec = record(target, draft_lm)
    path = tmp_path / "stopped.jsonl"
    rec.jsonl = JsonlWriter(path, rec.trace)
    with rec.jsonl:
        for i, _ in enumerate(rec):
            if i == 1:
                break
    t = load(path)
    assert len(t["steps"]) == 2 and t["output"]["stop_reason"] == "stopped" and "recovered" not in t["output"]
    assert validate(t) == []


# ---------------------------------------------------------------- reading odd but fine input


def test_loads_accepts_pretty_printed_bom_crlf_and_str() -> None:
    assert loads(json.dumps(BASE, indent=2).encode()) == BASE
    assert loads(b"\xef\xbb\xbf" + dumps(BASE).encode()) == BASE  # type: ignore[arg-type]
    assert loads(dumps(BASE)) == BASE  # type: ignore[arg-type]
    assert loads(bytearray(valid_bytes)) == loads(memoryview(valid_bytes)) == BASE  # type: ignore[arg-type]
    head = json.dumps({k: v for k, v in BASE.items() if k not in ("steps", "output")})
    body = [json.dumps(s) for s in BASE["steps"]] + [json.dumps({"output": BASE["output"]})]
    assert loads("\r\n".join([head, "", *body]).encode()) == BASE  # CRLF and a blank line


# ---------------------------------------------------------------- hostile input


def bad(data: bytes | str, **kw: Any) -> str:
    with pytest.raises(TraceError) as info:
        loads(data, **kw)
    return str(info.value)


def test_hostile_bytes_give_trace_errors() -> None:
    assert "empty" in bad(b"") and "empty" in bad(b"  \n\t ")
    assert "UTF-8" in bad(b'{"a": "\xff"}')
    assert "does not start with a JSON object" in bad(b"\x00\x01\x02binary")
    assert "does not start with a JSON object" in bad(b"[1, 2, 3]")
    assert "nested too deeply" in bad(b'{"a":' + b"[" * 100_000)
    assert "nested too deeply" in bad(b'{"meta":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    for const in (b"NaN", b"Infinity", b"-Infinity"):
        assert const.decode() in bad(b'{"format": "specviz-trace", "x": ' + const + b"}")
    assert "too large to be a float" in bad(b'{"x": 1e400}')
    assert "digits" in bad(b'{"x": ' + b"9" * 5000 + b"}")
    assert "damaged" in bad(b"\x1f\x8b" + b"junk")
    assert "damaged" in bad(gzip.compress(dumps(BASE).encode())[:-8])  # type: ignore[arg-type]
    assert "line 2: unexpected data" in bad(dumps(BASE) + "\n{}")  # type: ignore[operator]
    assert "unexpected data" in bad('{"format": "specviz-trace"} {"steps": []}')


def test_jsonl_errors_name_the_line() -> None:
    head = json.dumps({k: v for k, v in BASE.items() if k not in ("steps", "output")})
    steps = [json.dumps(s) for s in BASE["steps"]]
    out = json.dumps({"output": BASE["output"]})
    assert "line 3: not valid JSON" in bad("\n".join([head, steps[0], "{oops", *steps[1:], out]) + "\n")
    assert "line 3: more data after the output line" in bad("\n".join([head, out, steps[0]]) + "\n")
    assert "a JSONL trace needs at least one step line" in bad(head + "\n")
    assert "not a specviz trace" in bad(json.dumps({"format": "x"}) + "\n" + steps[0])


def test_size_caps() -> None:
    assert "the limit is" in bad(b"{" + b" " * 2000 + b"}", max_bytes=1000)
    bomb = gzip.compress(b"{" + b" " * 5000 + b"}")
    assert len(bomb) < 1000 and "decompresses to more than" in bad(bomb, max_bytes=1000)


def test_gzip_bomb_at_the_default_cap() -> None:
    bomb = gzip.compress(b"{" + bytes(MAX_BYTES), compresslevel=1)
    assert len(bomb) < MAX_BYTES // 100
    assert "decompresses to more than" in bad(bomb)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="cannot read"):
        load(tmp_path / "missing.json")
    with pytest.raises(TraceError, match="cannot read"):
        load(tmp_path)
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(3000)  # sparse: no real disk use
    with pytest.raises(TraceError, match="larger than the limit"):
        load(big, max_bytes=1000)


# ---------------------------------------------------------------- fuzzing

# JSON values as a parser could return them, with the awkward ones over-represented
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([0, 1, -1, 2**64, 10**400, -(10**400), 0.5, 1.5, -0.0, 1e308])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=25
)
# the values that break naive checks: beyond float range, NaN, bools posing as ints, empties
awkward = st.sampled_from(
    [10**400, -(10**400), 2**64, float("nan"), float("inf"), -1e308, 5e-324, -0.0, True, False, None, "", [], {}, "1"]
)


valid_bytes = dumps(BASE).encode()  # type: ignore[arg-type]


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths(v, (*prefix, i))


ALL_PATHS = [p for p in paths(BASE) if p]


def get(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def replaced(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    t = base()
    get(t, path[:-1])[path[-1]] = value
    return t


@FUZZ
@given(
    st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda i, b: valid_bytes[:i] + bytes([b]) + valid_bytes[i + 1 :],
            st.integers(0, len(valid_bytes) - 1),
            st.integers(0, 255),
        ),
        st.builds(lambda i: valid_bytes[:i], st.integers(0, len(valid_bytes))),
        st.builds(lambda b: gzip.compress(b), st.binary(max_size=100)),
        st.builds(lambda i: gzip.compress(valid_bytes)[:i], st.integers(0, 200)),
        st.builds(lambda v: json.dumps(v).encode(), json_values),
    )
)
def test_loads_raises_only_trace_error(data: bytes) -> None:
    try:
        trace = loads(data)
    except TraceError as exc:
        assert str(exc)
    else:
        assert isinstance(trace, dict)


@FUZZ
@given(st.one_of(awkward, json_values, st.floats()))
def test_validate_never_raises_on_any_json(value: Any) -> None:
    found = _validate(value)  # the unguarded core: a crash here is a bug to fix, not to hide
    assert isinstance(found, list) and all(isinstance(p, str) for p in found)
    assert validate(value) == found


@FUZZ
@given(st.sampled_from(ALL_PATHS), st.one_of(awkward, scalars, json_values, st.floats()))
def test_validate_never_raises_on_damaged_traces(path: tuple[Any, ...], value: Any) -> None:
    t = replaced(path, value)
    found = _validate(t)
    assert all(isinstance(p, str) and "\n" not in p for p in found)
    if isinstance(value, float) and value != value:
        return  # NaN: no JSON can hold it, so the schema has no say
    if not SCHEMA.is_valid(t):
        assert found, f"the schema rejects {path} = {value!r} but validate() does not"


def other_kind(value: Any) -> st.SearchStrategy[Any]:
    """A JSON value of a different kind (number, string, bool, array, object; null only for null)."""
    kinds = {
        "str": st.text(max_size=5),
        "num": st.integers(-3, 3) | st.floats(-2, 2),
        "bool": st.booleans(),
        "list": st.lists(st.integers(), max_size=2),
        "dict": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    }
    # null counts as a number here: null -> number is how optional numbers (ratio, cutoff) are filled in
    kind = {str: "str", bool: "bool", list: "list", dict: "dict"}.get(type(value), "num")
    return st.one_of(*(s for k, s in kinds.items() if k != kind))


REQUIRED = {
    (): ("format", "version", "meta", "prompt", "steps", "output"),
    ("meta",): ("target", "draft", "gamma", "rule", "sampling", "seed", "max_new_tokens"),
    ("prompt",): ("text", "token_ids"),
    ("output",): ("token_ids", "text", "stop_reason"),
}
for k, s in enumerate(BASE["steps"]):
    REQUIRED[("steps", k)] = ("index", "context_length", "draft", "verify", "n_accepted", "next", "timing_ms")
    REQUIRED[("steps", k, "next")] = ("token_id", "token", "kind", "top")
    for j, v in enumerate(s["verify"]):
        REQUIRED[("steps", k, "draft", j)] = ("token_id", "token", "q", "top")
        decided = v["accepted"] is not None
        REQUIRED[("steps", k, "verify", j)] = ("p", "accepted", "top") + (("accept_prob", "r") if decided else ())
REQUIRED_KEYS = [(parent, key) for parent, keys in REQUIRED.items() for key in keys]
DECIDED = [(k, j) for k, s in enumerate(BASE["steps"]) for j, v in enumerate(s["verify"]) if v["accepted"] is not None]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(REQUIRED_KEYS))
def test_dropping_a_required_key_is_reported(where: tuple[tuple[Any, ...], str]) -> None:
    parent, key = where
    t = base()
    del get(t, parent)[key]
    assert validate(t), f"dropping {parent} / {key} went unnoticed"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_changing_a_type_is_reported(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(ALL_PATHS))
    value = data.draw(other_kind(get(BASE, path)))
    assert validate(replaced(path, value)), f"{path} = {value!r} went unnoticed"


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(DECIDED))
def test_flipping_an_accepted_flag_is_reported(pos: tuple[int, int]) -> None:
    k, j = pos
    t = base()
    v = t["steps"][k]["verify"][j]
    v["accepted"] = not v["accepted"]
    assert validate(t)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(BASE["steps"]) - 1), st.integers(-2, 6))
def test_changing_n_accepted_is_reported(k: int, n: int) -> None:
    assume(n != BASE["steps"][k]["n_accepted"])
    t = base()
    t["steps"][k]["n_accepted"] = n
    assert validate(t)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(DECIDED), st.floats(0, 1))
def test_tampering_with_r_across_accept_prob_is_reported(pos: tuple[int, int], u: float) -> None:
    k, j = pos
    t = base()
    v = t["steps"][k]["verify"][j]
    a = v["accept_prob"]
    if v["accepted"]:
        v["r"] = min(1.0, a + u * (1 - a))  # r >= accept_prob: the rule would have rejected
    else:
        assume(a > 0 and u < 1)
        v["r"] = u * a  # r < accept_prob: the rule would have accepted
    assert any("but r =" in p for p in validate(t))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(DECIDED), st.sampled_from([-0.1, 1.0001, 2.0, -1e-9]))
def test_r_outside_unit_interval_is_reported(pos: tuple[int, int], r: float) -> None:
    t = base()
    t["steps"][pos[0]]["verify"][pos[1]]["r"] = r
    assert validate(t)


# ---------------------------------------------------------------- semantics, one by one


def test_messages_say_where() -> None:
    t = base()
    t["steps"][3]["verify"][1]["p"] = 7
    assert validate(t) == ["step 3, position 1: p must be a probability in [0, 1], got 7"]


def test_validate_on_non_objects_and_limit() -> None:
    for v in (None, [], "trace", 5, True):
        assert validate(v) and "must be a JSON object" in validate(v)[0]
    t = base()
    for s in t["steps"]:
        s["index"] = -1
    assert len(validate(t, limit=2)) == 2


def test_in_memory_trace_without_output_is_incomplete() -> None:
    t = base()
    del t["output"]
    assert [p for p in validate(t) if p.startswith("output: missing")]


def test_steps_after_eos_are_reported() -> None:
    t = base()
    t["meta"]["eos_token_ids"] = [t["steps"][1]["next"]["token_id"]]
    found = validate(t)
    assert any("comes after generation ended (EOS in step" in p for p in found)


def test_greedy_decisions_are_checked() -> None:
    t = base()
    t["meta"]["rule"]["name"] = "greedy"
    found = validate(t)
    # the sampling trace accepted tokens that are not the target's argmax: greedy would not have
    assert any("accepted under greedy" in p or "rejected under greedy" in p for p in found)


@pytest.mark.parametrize("bad", [0, -1, 2.5, "3", True])
def test_copied_must_be_an_ngram_length(bad: Any) -> None:
    t = base()
    t["steps"][0]["draft"][0]["copied"] = bad
    assert any("copied must be" in p for p in validate(t))
    t["steps"][0]["draft"][0]["copied"] = 2
    assert validate(t) == []


def test_p_must_agree_with_its_top_entry() -> None:
    t = base()
    v = t["steps"][0]["verify"][0]
    token = t["steps"][0]["draft"][0]["token_id"]
    assert any(e["token_id"] == token for e in v["top"])
    v["p"] = v["p"] / 2
    v["accept_prob"] = min(1.0, v["p"] / t["steps"][0]["draft"][0]["q"])
    assert any("its entry in top says" in p for p in validate(t))


def test_output_ids_truncates_at_eos_and_budget() -> None:
    steps = BASE["steps"]
    full = output_ids(steps)
    assert full == BASE["output"]["token_ids"]
    assert output_ids(steps, max_new_tokens=3) == full[:3]
    assert output_ids(steps, eos_ids=[full[4]]) == full[: full.index(full[4]) + 1]


def test_finish_infers_the_stop_reason() -> None:
    t = base()
    assert finish(t)["output"]["stop_reason"] == "max_new_tokens"  # type: ignore[arg-type]
    t["meta"]["max_new_tokens"] = 100
    assert finish(t)["output"]["stop_reason"] == "stopped"  # type: ignore[arg-type]
    t["meta"]["eos_token_ids"] = [t["output"]["token_ids"][-1]]
    assert finish(t)["output"]["stop_reason"] == "eos"  # type: ignore[arg-type]


# ---------------------------------------------------------------- recorded traces: validate and the schema


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA.schema)


@pytest.mark.parametrize("rule", ["sampling", "greedy", "threshold", "typical"])
@pytest.mark.parametrize("kind", ["model", "ngram", "model+lookup"])
def test_recorded_traces_pass_validate_and_schema(target: CausalLM, draft_lm: CausalLM, rule: str, kind: str) -> None:
    trace = record(target, None if kind == "ngram" else draft_lm, rule, lookup=1.0 if "lookup" in kind else 0.0).run()
    assert validate(trace) == []
    copied = [d["copied"] for s in trace["steps"] for d in s["draft"] if "copied" in d]
    assert bool(copied) == (kind == "model+lookup")  # the prompt repeats: a fallback that always may copy does
    errors = [e.message for e in SCHEMA.iter_errors(trace)]
    assert errors == []
    assert loads(dumps(trace)) == trace


# ---------------------------------------------------------------- summaries


def test_summarize_counts() -> None:
    s = summarize(BASE)  # type: ignore[arg-type]
    steps = BASE["steps"]
    drafted = sum(len(st["draft"]) for st in steps)
    accepted = sum(st["n_accepted"] for st in steps)
    assert s["steps"] == len(steps) and s["tokens"] == len(BASE["output"]["token_ids"])
    assert s["acceptance_rate"] == pytest.approx(accepted / drafted)
    assert s["mean_accepted"] == pytest.approx(accepted / sum(1 for st in steps if st["draft"]))
    assert s["tokens_per_step"] == pytest.approx(s["tokens"] / len(steps))
    assert sum(s["accepted_length_counts"]) + s["steps_without_draft"] == len(steps)
    assert s["rejections"] == sum(1 for st in steps if st["n_accepted"] < len(st["draft"]))
    assert len(s["per_position_acceptance"]) == BASE["meta"]["gamma"]
    assert s["draft_ms"] == pytest.approx(1.5 * len(steps)) and s["draft_share"] == pytest.approx(1.5 / 3.75)
    first = [st["verify"][0]["accepted"] for st in steps]
    assert s["per_position_acceptance"][0] == pytest.approx(sum(first) / len(first))
    json.dumps(s)  # JSON-able, for `summarize --json`


def test_summarize_leaves_steps_without_a_draft_out_of_the_accepted_lengths() -> None:
    t = copy.deepcopy(BASE)
    t["steps"][0].update(draft=[], verify=[], n_accepted=0)  # prompt lookup that found nothing
    s, before = summarize(t), summarize(BASE)  # type: ignore[arg-type]
    assert s["steps_without_draft"] == 1 and before["steps_without_draft"] == 0
    assert sum(s["accepted_length_counts"]) == len(t["steps"]) - 1
    assert s["rejections"] == before["rejections"] - (BASE["steps"][0]["n_accepted"] < len(BASE["steps"][0]["draft"]))


def test_the_documented_example_is_valid() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "TRACE_FORMAT.md").read_text()
    example = json.loads(doc.split("```json\n", 1)[1].split("```", 1)[0])
    assert validate(example) == [] and SCHEMA.is_valid(example)


def test_byte_label_marks_only_the_partial_bytes() -> None:
    from specviz.trace import byte_label

    assert byte_label("😀".encode()) == "😀"
    assert byte_label(b" \xf0\x9f") == " ‹F0 9F›"
    assert byte_label(b"\x98\x80a\xe4") == "‹98 80›a‹E4›"


def test_token_bytes_are_checked() -> None:
    t = json.loads(VALID.read_text())
    t["steps"][0]["draft"][0]["bytes"] = "f09"
    t["steps"][0]["verify"][0]["top"][0]["bytes"] = "<script>"
    found = validate(t)
    assert sum("bytes must be the token's bytes in lowercase hex" in p for p in found) == 2


def test_whole_text_holds_back_an_incomplete_character() -> None:
    from specviz.trace import whole_text

    full = "你好, 世界 😀!".encode()
    for cut in range(len(full) + 1):
        text, pending = whole_text(full[:cut])
        assert "\ufffd" not in text and full.decode().startswith(text)  # a prefix of the full text, always
        assert text.encode() + pending == full[:cut] and len(pending) <= 3
    assert whole_text(b"a\xffb") == ("a\ufffdb", b"")  # a byte that is never UTF-8 is still shown as such


def test_a_cut_cjk_and_emoji_trace_rebuilds_a_prefix_of_its_text(tmp_path: Path) -> None:
    """Public report: a JSONL trace of CJK and emoji text cut after a complete step ended in U+FFFD."""
    t = copy.deepcopy(BASE)
    pieces = iter([b"\xe4\xbd", b"\xa0\xe5", b"\xa5\xbd", b" \xf0\x9f", b"\x98\x80", b"!"] * 50)
    ids: dict[bytes, int] = {}
    for step in t["steps"]:  # the output's tokens, in order, are the pieces; one token id per piece
        kept = step["draft"][: step["n_accepted"]] + ([step["next"]] if step.get("next") else [])
        for e in kept:
            raw = next(pieces)
            e["bytes"], e["token"], e["token_id"] = raw.hex(), byte_label(raw), ids.setdefault(raw, 1000 + len(ids))
        for e in step["draft"][step["n_accepted"] :]:
            e["token"], e["token_id"] = "x", ids.setdefault(b"x", 1000 + len(ids))
            e.pop("bytes", None)
    t["meta"]["eos_token_ids"] = []
    full = finish(copy.deepcopy(t))["output"]["text"]
    held = 0
    for n in range(1, len(t["steps"]) + 1):
        cut = copy.deepcopy(t)
        cut["steps"] = cut["steps"][:n]
        out = finish(cut)["output"]
        assert "\ufffd" not in out["text"] and full.startswith(out["text"])
        pending = bytes.fromhex(out.get("pending_bytes", ""))
        assert len(pending) <= 3 and not any("pending_bytes" in p for p in validate(cut))
        held += bool(pending)
    assert held  # some cut did end inside a character
