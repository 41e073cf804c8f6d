"""Event-log import: CSV and JSONL rows to a minimal trace; every defect named by line and column; fuzzed."""

from __future__ import annotations

import contextlib
import copy
import csv
import gzip
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specviz.figures import missing_parts
from specviz.formats.eventlog import COLUMNS, MAX_ROWS, load_eventlog, loads_eventlog
from specviz.formats.opener import loads_any, sniff
from specviz.trace import TraceError, dumps, output_ids, validate

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "data"
EXAMPLE = ROOT / "assets" / "example-eventlog.csv"
BROKEN = DATA / "broken_eventlog"
EXPECTED: dict[str, str] = json.loads((BROKEN / "EXPECTED.json").read_text())
BASE: dict[str, Any] = json.loads((DATA / "valid" / "tiny.json").read_text())
FUZZ = settings(
    max_examples=int(os.environ.get("SPECVIZ_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
HEADER = "step,position,draft_token,accepted"


def rows_of(trace: dict[str, Any], columns: tuple[str, ...] = COLUMNS) -> list[dict[str, Any]]:
    """A native trace as event-log rows (what an engine that logs everything would write)."""
    rows = []
    for s in trace["steps"]:
        nxt = s.get("next") or {}
        for j, (d, v) in enumerate(zip(s["draft"], s["verify"], strict=True)):
            row = {
                "step": s["index"],
                "position": j,
                "draft_token": d["token"],
                "draft_token_id": d["token_id"],
                "q": d["q"],
                "p": v["p"],
                "r": v["r"],
                "accepted": v["accepted"],
                "next_token": nxt.get("token"),
                "next_token_id": nxt.get("token_id"),
                "next_kind": nxt.get("kind"),
                "draft_ms": s["timing_ms"]["draft"],
                "verify_ms": s["timing_ms"]["verify"],
                "parent": j - 1,  # a chain: each draft hangs from the one before
            }
            rows.append({k: row[k] for k in columns})
    return rows


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> bytes:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if v is None else str(v).lower() if isinstance(v, bool) else v) for k, v in row.items()})
    return out.getvalue().encode()


def to_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()


def error(data: bytes | str, name: str = "log.csv") -> str:
    with pytest.raises(TraceError) as info:
        loads_eventlog(data, name)
    return str(info.value)


# ---------------------------------------------------------------- reading what engines write


def test_the_example_file_loads_and_says_what_it_lacks() -> None:
    trace = load_eventlog(EXAMPLE)
    assert validate(trace, strict=False) == []
    assert len(trace["steps"]) >= 8
    assert trace["meta"]["source"]["kind"] == "eventlog"
    gaps = {g.key for g in missing_parts(trace)}
    assert "top" in gaps and "q" not in gaps and "timing" not in gaps


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "csv.gz", "tsv"])
def test_a_full_log_rebuilds_the_trace(fmt: str) -> None:
    rows = rows_of(BASE)
    data = {
        "csv": lambda: to_csv(rows),
        "jsonl": lambda: to_jsonl(rows),
        "csv.gz": lambda: gzip.compress(to_csv(rows)),
        "tsv": lambda: to_csv(rows).replace(b",", b"\t"),
    }[fmt]()
    trace = loads_eventlog(data, f"log.{fmt}")
    assert validate(trace, strict=False) == []
    assert len(trace["steps"]) == len(BASE["steps"])
    for got, want in zip(trace["steps"], BASE["steps"], strict=True):
        assert got["n_accepted"] == want["n_accepted"]
        assert [d["token_id"] for d in got["draft"]] == [d["token_id"] for d in want["draft"]]
        assert [v["accepted"] for v in got["verify"]] == [v["accepted"] for v in want["verify"]]
        assert got["next"]["token_id"] == want["next"]["token_id"] and got["next"]["kind"] == want["next"]["kind"]
        assert got["timing_ms"] == want["timing_ms"]
    # the output is the native one, cut at nothing (an event log knows no EOS or budget)
    assert trace["output"]["token_ids"] == output_ids(BASE["steps"])
    assert {g.key for g in missing_parts(trace)} == {"top", "prompt"}
    json.loads(dumps(trace))  # a normal, serialisable trace


def test_decisions_are_derived_from_r_p_q_when_there_is_no_accepted_column() -> None:
    cols = tuple(c for c in COLUMNS if c != "accepted")
    trace = loads_eventlog(to_csv(rows_of(BASE, cols), cols))
    assert [s["n_accepted"] for s in trace["steps"]] == [s["n_accepted"] for s in BASE["steps"]]
    assert trace["meta"]["rule"]["name"] == "sampling"


def test_minimal_log_and_made_up_ids() -> None:
    text = f"{HEADER}\n0,0, the,true\n0,1, cat,false\n0,2, sat,false\n1,0, the,1\n1,1, mat,0\n"
    trace = loads_eventlog(text)
    s0, s1 = trace["steps"]
    assert [v["accepted"] for v in s0["verify"]] == [True, False, None]  # a "false" after the rejection: null
    assert s0["draft"][0]["token_id"] == s1["draft"][0]["token_id"]  # the same text, the same made-up id
    assert trace["meta"]["source"]["synthetic_token_ids"] is True
    assert "next" not in s0 and trace["output"]["text"] == " the the"
    keys = [g.key for g in missing_parts(trace)]
    assert keys[:3] == ["q", "p", "r"] and {"next", "timing", "rule", "token_ids"} <= set(keys)


def test_one_based_positions_unsorted_rows_and_step_rows_without_drafts() -> None:
    text = (
        "step,position,draft_token,accepted,next_token,draft_ms,verify_ms\n"
        "7,2,b,false,x,1,2\n"
        "7,1,a,true,x,1,2\n"
        "9,,,,y,0.5,2\n"  # a step whose drafter proposed nothing
    )
    trace = loads_eventlog(text)
    assert [s["index"] for s in trace["steps"]] == [0, 1]
    assert [d["token"] for d in trace["steps"][0]["draft"]] == ["a", "b"]
    assert trace["steps"][1]["draft"] == [] and trace["steps"][1]["next"]["kind"] == "bonus"
    assert trace["steps"][0]["next"]["kind"] == "correction"
    assert trace["meta"]["source"]["first_position"] == 1
    assert validate(trace, strict=False) == []


def test_header_is_case_and_space_insensitive_and_extra_columns_are_listed() -> None:
    text = " Step , POSITION,draft_token,Accepted,engine_note\n0,0,a,true,hello\n"
    trace = loads_eventlog(text)
    assert trace["meta"]["source"]["ignored_columns"] == ["engine_note"]


def test_logged_ids_and_next_ids_never_collide_with_made_up_ones() -> None:
    text = "step,position,draft_token,draft_token_id,accepted,next_token\n0,0,a,5,false,zz\n1,0,b,0,true,a\n"
    trace = loads_eventlog(text)
    nxt0, nxt1 = trace["steps"][0]["next"], trace["steps"][1]["next"]
    assert nxt0["token_id"] == 6  # not a logged id
    assert nxt1["token_id"] == 5  # "a" has a logged id
    assert trace["meta"]["source"]["synthetic_token_ids"] is True


def test_an_empty_next_token_in_jsonl_is_a_token() -> None:
    rows = [{"step": 0, "position": 0, "draft_token": "a", "accepted": False, "next_token": ""}]
    assert loads_eventlog(to_jsonl(rows), "log.jsonl")["steps"][0]["next"]["token"] == ""


def test_sniff_and_loads_any() -> None:
    native = dumps(BASE).encode()  # type: ignore[arg-type]
    log = to_csv(rows_of(BASE))
    assert sniff(native, "x.json") == "trace" and sniff(gzip.compress(native), "x.json.gz") == "trace"
    assert sniff(log, "x.csv") == "eventlog" and sniff(log, "unnamed") == "eventlog"
    assert sniff(gzip.compress(log), "x.gz") == "eventlog"
    assert sniff(to_jsonl(rows_of(BASE)), "x.jsonl") == "eventlog"
    head = json.dumps({k: v for k, v in BASE.items() if k not in ("steps", "output")})
    assert sniff(head + "\n" + json.dumps(BASE["steps"][0]), "x.jsonl") == "trace"
    assert loads_any(native, "x.json") == BASE
    assert loads_any(log, "x.csv")["meta"]["source"]["format"] == "csv"
    with pytest.raises(TraceError, match="not valid JSON"):
        loads_any(b"{oops", "x.json")


# ---------------------------------------------------------------- hostile and broken logs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("step,position\n0,0\n", "no 'draft_token' column"),
        ("step,position,draft_token\n0,0,a\n", "no 'accepted' column, and no r, p and q"),
        (f"{HEADER}\n", "no rows"),
        (f"{HEADER},accepted\n0,0,a,true,true\n", "appears twice"),
        (f"{HEADER}\n0,0,a,maybe\n", "line 2, column accepted: must be true or false"),
        (f"{HEADER}\nx,0,a,true\n", "line 2, column step: must be an integer >= 0, got 'x'"),
        (f"{HEADER}\n0,-1,a,true\n", "line 2, column position: must be an integer"),
        (f"{HEADER}\n,0,a,true\n", "line 2, column step: empty"),
        (f"{HEADER}\n0,0,a,true\n0,0,b,false\n", "lines 2 and 3 both give position 0"),
        (f"{HEADER}\n0,0,a,true\n0,2,b,false\n", "line 3: position 2, but position 1 is missing"),
        (f"{HEADER}\n0,0,a,false\n0,1,b,true\n", "line 3, column accepted: true after the rejection"),
        (f"{HEADER}\n0,0,a,\n", "line 2, column accepted: empty, but no earlier draft"),
        (f"{HEADER}\n0,0,a,true,extra\n", "line 2: 5 fields, but the header names 4"),
        (f'{HEADER}\n0,0,"a,true\n', "not valid CSV"),
        (f"{HEADER}\n0,,a,true\n", "column position: empty, but the row has a draft_token"),
        ("step,position,draft_token,q,accepted\n0,0,a,1.5,true\n", "line 2, column q: must be a probability"),
        ("step,position,draft_token,q,accepted\n0,0,a,NaN,true\n", "leave the cell empty"),
        ("step,position,draft_token,p,accepted\n0,0,a,-0.1,true\n", "column p: must be a probability"),
        ("step,position,draft_token,r,accepted\n0,0,a,inf,true\n", "column r: must be a probability"),
        ("step,position,draft_token,draft_ms,accepted\n0,0,a,-3,true\n", "column draft_ms: must be milliseconds"),
        ("step,position,draft_token,q,p,r,accepted\n0,0,a,0.5,0.4,0.9,true\n", "line 2 (step 0, position 0)"),
        ("step,position,draft_token,q,p,r\n0,0,a,0.5,,0.9\n", "all three are needed"),
        ("step,position,draft_token,accepted,next_kind\n0,0,a,true,maybe\n", "must be correction or bonus"),
        ("step,position,draft_token,accepted,next_token,next_kind\n0,0,a,true,b,correction\n", "so it is a bonus"),
        ("step,position,draft_token,accepted,next_kind\n0,0,a,false,correction\n", "column next_token: empty"),
        ("step,position,draft_token,accepted,next_token\n0,0,a,true,x\n0,1,b,false,y\n", "different values"),
        ("step,position,draft_token,draft_token_id,accepted\n0,0,a,1,true\n0,1,b,,false\n", "draft_token_id: empty"),
        (f"{HEADER}\n0,0,{'x' * 2000},true\n", "too long for one token"),
        (f"{HEADER}\n0,0,a\x00,true\n", "NUL"),
        ('{"step": 0, "position": 0, "draft_token": 5, "accepted": true}\n', "column draft_token: must be text"),
        ('{"step": 0, "position": 0, "draft_token": "a", "accepted": true}\n[1]\n', "line 2: each line must be"),
        ('{"step": 0, "position": 0, "draft_token": "a", "accepted": true}\n{"step": 1}\n', "line 2: no 'position'"),
        ('{"step": 0, "position": 0, "draft_token": "\\ud800", "accepted": true}\n', "half of a surrogate pair"),
        ('{"step": 0, "position": 0, "draft_token": "a", "accepted": NaN}\n', "NaN"),
        ('{"step": 0, "position": 0, "draft_token": "a", "accepted": ' + "[" * 50_000 + "\n", "nested too deeply"),
        ('{"step": true, "position": 0, "draft_token": "a", "accepted": true}\n', "column step: must be an integer"),
    ],
)
def test_broken_logs_are_named_by_line_and_column(text: str, message: str) -> None:
    found = error(text, "log.jsonl" if text.startswith("{") else "log.csv")
    assert message in found, found
    assert "\n" not in found


def test_binary_gzip_bomb_and_size_caps() -> None:
    assert "not UTF-8" in error(b"step,position,draft_token,accepted\n0,0,\xff,true\n")
    with pytest.raises(TraceError, match="decompresses to more than"):
        loads_eventlog(gzip.compress(b"step," + b" " * 5000), "log.csv.gz", max_bytes=1000)
    with pytest.raises(TraceError, match="the limit is"):
        loads_eventlog(b"step," + b" " * 5000, "log.csv", max_bytes=1000)
    assert "damaged" in error(b"\x1f\x8bjunk", "log.csv.gz")


def test_row_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    import specviz.formats.eventlog_rows as ev

    monkeypatch.setattr(ev, "MAX_ROWS", 3)
    assert "more than 3 rows" in error(HEADER + "\n" + "".join(f"{k},0,a,true\n" for k in range(5)))
    assert MAX_ROWS >= 100_000


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_broken_logs(name: str) -> None:
    assert EXPECTED[name] in error((BROKEN / name).read_bytes(), name)


def test_every_broken_log_has_an_expectation() -> None:
    assert sorted(p.name for p in BROKEN.iterdir() if p.name != "EXPECTED.json") == sorted(EXPECTED)


# ---------------------------------------------------------------- fuzz: only TraceError, and what loads is valid


cells = st.one_of(
    st.sampled_from(
        ["", "0", "1", "2", "-1", "true", "false", "null", "0.5", "1.5", "nan", "x", "bonus", "correction"]
    ),
    st.text(max_size=6),
)
row_dicts = st.dictionaries(
    st.sampled_from([*COLUMNS, "junk"]),
    st.one_of(cells, st.integers(-2, 5), st.none(), st.booleans(), st.floats()),
    max_size=8,
)


def _valid_or_trace_error(data: bytes, name: str) -> None:
    try:
        trace = loads_eventlog(data, name)
    except TraceError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert validate(trace, strict=False) == [], validate(trace, strict=False)
    json.loads(dumps(trace))


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_give_a_trace_or_a_trace_error(data: bytes) -> None:
    _valid_or_trace_error(data, "log.csv")
    _valid_or_trace_error(b"step,position,draft_token,accepted\n" + data, "log.csv")


@FUZZ
@given(st.lists(st.lists(cells, min_size=0, max_size=5), max_size=8))
def test_any_csv_table_gives_a_trace_or_a_trace_error(table: list[list[str]]) -> None:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["step", "position", "draft_token", "accepted", "q"])
    w.writerows(table)
    _valid_or_trace_error(out.getvalue().encode(), "log.csv")


@FUZZ
@given(st.lists(row_dicts, max_size=8))
def test_any_jsonl_rows_give_a_trace_or_a_trace_error(rows: list[dict[str, Any]]) -> None:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode() if rows else b"{}\n"
    _valid_or_trace_error(data, "log.jsonl")


@FUZZ
@given(st.data())
def test_damaging_one_cell_of_a_good_log_gives_a_trace_or_a_trace_error(data: st.DataObject) -> None:
    rows = copy.deepcopy(rows_of(BASE))
    i = data.draw(st.integers(0, len(rows) - 1))
    col = data.draw(st.sampled_from(COLUMNS))
    rows[i][col] = data.draw(st.one_of(cells, st.integers(-3, 50), st.none(), st.booleans(), st.floats()))
    _valid_or_trace_error(to_jsonl(rows), "log.jsonl")


@FUZZ
@given(st.binary(max_size=200), st.sampled_from(["up.csv", "up.json", "up.jsonl", "up.json.gz", "up"]))
def test_loads_any_raises_only_trace_error(data: bytes, name: str) -> None:
    for blob in (data, gzip.compress(data), b"{" + data, b"step,position,draft_token,accepted\n" + data):
        with contextlib.suppress(TraceError):
            loads_any(blob, name)


# ---------------------------------------------------------------- minimal native traces (validate strict=False)

MINIMAL: dict[str, Any] = json.loads((DATA / "valid" / "minimal.json").read_text())


def leaf_paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += leaf_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += leaf_paths(v, (*prefix, i))
    return out


def at(obj: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def test_minimal_trace_is_valid_only_in_lenient_mode() -> None:
    assert validate(MINIMAL, strict=False) == []
    strict = validate(MINIMAL)
    assert strict and all("top" in p or "timing_ms" in p or "accept_prob and r" in p for p in strict), strict
    gaps = {g.key for g in missing_parts(MINIMAL)}
    assert {"top", "timing", "r"} <= gaps and "q" not in gaps and "p" not in gaps


OPTIONAL_STEP_KEYS = ("context_length", "timing_ms", "next")


@pytest.mark.parametrize("key", OPTIONAL_STEP_KEYS)
def test_optional_step_fields_may_be_missing(key: str) -> None:
    t = copy.deepcopy(MINIMAL)
    for s in t["steps"]:
        s.pop(key, None)
    t.pop("output")
    assert validate(t, strict=False) == []
    assert validate(t)  # strict still wants it


@pytest.mark.parametrize("key", ["target", "draft", "gamma", "rule", "sampling", "seed", "max_new_tokens"])
def test_optional_meta_fields_may_be_missing(key: str) -> None:
    t = copy.deepcopy(MINIMAL)
    t["meta"].pop(key)
    assert validate(t, strict=False) == []


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("steps", 0, "draft", 0, "q"), 1.5, "q must be a probability"),
        (("steps", 0, "verify", 0, "p"), "x", "p must be a probability"),
        (("steps", 0, "verify", 0, "accepted"), None, "accepted must be true or false"),
        (("steps", 0, "n_accepted"), 9, "n_accepted must be an integer"),
        (("steps", 1, "context_length"), -1, "context_length must be an integer"),
        (("steps", 0, "timing_ms"), {"draft": -1, "verify": 2}, "timing_ms must be"),
        (("meta", "gamma"), 0, "meta.gamma: must be an integer >= 1"),
        (("steps", 0, "draft", 0, "token_id"), "7", "a draft entry needs an integer token_id"),
    ],
)
def test_present_fields_are_checked_as_strictly_as_ever(path: tuple[Any, ...], value: Any, message: str) -> None:
    t = copy.deepcopy(MINIMAL)
    at(t, path[:-1])[path[-1]] = value
    found = validate(t, strict=False)
    assert any(message in p for p in found), found


def test_decisions_are_rechecked_where_the_numbers_are_there() -> None:
    t = copy.deepcopy(BASE)
    v = next(v for s in t["steps"] for v in s["verify"] if v["accepted"])
    v["r"] = 0.999999  # accepted, yet r >= accept_prob (< 1 here or not: the check runs when r is logged)
    v["accept_prob"] = 0.5
    for s in t["steps"]:
        s.pop("timing_ms")
    assert any("accepted is true but r =" in p for p in validate(t, strict=False))


@FUZZ
@given(st.data())
def test_lenient_validation_never_raises(data: st.DataObject) -> None:
    from specviz.trace import _validate

    t = copy.deepcopy(data.draw(st.sampled_from([BASE, MINIMAL])))
    path = data.draw(st.sampled_from(leaf_paths(t)))
    parent = at(t, path[:-1])
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(-5, 2**70),
                st.floats(),
                st.text(max_size=4),
                st.lists(st.integers(), max_size=2),
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
            )
        )
    found = _validate(t, strict=False)  # unguarded: a crash here is a bug
    assert all(isinstance(p, str) and "\n" not in p for p in found)
    if not found:
        missing_parts(t)  # the pages' view of an accepted trace must not crash either


def test_interrupted_minimal_jsonl_loads_without_output_and_finishes() -> None:
    from specviz.trace import finish, loads

    head = json.dumps({k: v for k, v in MINIMAL.items() if k not in ("steps", "output")})
    body = [json.dumps(s) for s in MINIMAL["steps"][:3]]
    t = loads(("\n".join([head, *body]) + "\n").encode())
    assert "output" not in t and validate(t, strict=False) == []
    finish(t, "stopped")
    assert validate(t, strict=False) == [] and t["output"]["stop_reason"] == "stopped"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_panel_draws_whatever_a_minimal_trace_lacks(data: st.DataObject) -> None:
    """Drop any optional part from any place: if lenient validation accepts the trace, every figure draws it."""
    from specviz import figures as fg
    from specviz.core import theory
    from specviz.trace import finish

    t = copy.deepcopy(data.draw(st.sampled_from([BASE, MINIMAL])))
    t.pop("output", None)
    optional = ("q", "p", "r", "accept_prob", "top", "timing_ms", "next", "context_length", "prob", "source")
    for path in data.draw(st.lists(st.sampled_from([p for p in leaf_paths(t) if p[-1] in optional]), max_size=6)):
        parent = at(t, path[:-1]) if _exists(t, path) else None
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    for key in data.draw(st.lists(st.sampled_from(["rule", "gamma", "sampling", "max_new_tokens"]), max_size=2)):
        t["meta"].pop(key, None)
    if validate(t, strict=False):
        return
    finish(t, "stopped")
    for k in range(min(2, len(t["steps"]))):
        fg.describe_step(t, k)
        fg.describe_next(t, k)
        fg.acceptance_figure(t, k)
        fg.distribution_figure(t, k)
        fg.step_picture(t, k)
    fg.timeline_figure(t, 0, len(t["steps"]), 0)
    fg.verdict(theory.measure(t))
    fg.timing_figure(t)
    assert isinstance(fg.missing_parts(t), list)


def _exists(obj: Any, path: tuple[Any, ...]) -> bool:
    try:
        at(obj, path)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def test_a_parent_column_makes_a_draft_tree() -> None:
    """Version 2 event logs: rows with a parent (the parent's position, -1 for the root) form a tree;
    the path is walked from the accepted flags and draft/verify show its main line."""
    text = (
        "step,position,parent,draft_token,q,p,accepted,next_token\n"
        "0,0,-1,the,0.5,0.2,false,a\n"  # root's first child: rejected
        "0,1,-1,a,0.3,0.6,true,a\n"  # its sibling: accepted
        "0,2,0,cat,0.9,0.9,false,a\n"  # under the rejected node: never tested (a log may say false)
        "0,3,1,dog,0.6,0.1,false,a\n"  # the path's next depth: rejected, so a correction follows
        "1,0,-1,sat,0.9,0.9,true,on\n"  # a chain step in the same log
    )
    trace = loads_eventlog(text, "tree.csv")
    assert validate(trace, strict=False) == []
    step = trace["steps"][0]
    assert step["tree"]["path"] == [1] and step["n_accepted"] == 1
    assert [d["token"] for d in step["draft"]] == ["a", "dog"] and step["next"]["kind"] == "correction"
    assert [nd["depth"] for nd in step["tree"]["nodes"]] == [1, 1, 2, 2]
    assert step["tree"]["nodes"][2]["accepted"] is None
    assert "tree" not in trace["steps"][1]
    with pytest.raises(TraceError, match="parent must come before it"):
        loads_eventlog("step,position,parent,draft_token,accepted\n0,0,1,a,true\n0,1,-1,b,true\n", "bad.csv")
    with pytest.raises(TraceError, match="both accepted"):
        loads_eventlog("step,position,parent,draft_token,accepted\n0,0,-1,a,true\n0,1,-1,b,true\n", "two.csv")
