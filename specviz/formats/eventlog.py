"""Event logs: another engine's speculative-decoding log, one row per drafted token, read as a trace.

A vLLM or llama.cpp deployment, or a notebook, rarely writes specviz's trace format, but most can
write a flat table. This module reads one (CSV with a header row, or JSONL with one object per
line; either may be gzip-compressed) and builds a *minimal* native trace from what it holds:

    step, position, draft_token                                   required
    draft_token_id, q, p, r, accepted,
    next_token, next_token_id, next_kind, draft_ms, verify_ms      optional

docs/EVENTLOG.md describes every column. The result passes `validate(trace, strict=False)`;
`specviz.figures.missing_parts` says what it lacks (no q: no ratio panel; no timings: no cost
analysis; ...). Like `specviz.trace.loads`, every function here treats its input as hostile and
raises only TraceError, whose message names the line and the column.

Pure Python, like specviz.trace: no torch, no streamlit. What a file is, and the opener for every
kind of upload, is specviz.formats.opener.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from specviz.trace import (
    FORMAT,
    MAX_BYTES,
    MAX_STEPS,
    VERSION,
    Trace,
    TraceError,
    check_unicode,
    finish,
    parse_line,
    read_file,
    read_text,
    short,
    validate,
)

__all__ = [
    "COLUMNS",
    "MAX_ROWS",
    "REQUIRED",
    "load_eventlog",
    "loads_eventlog",
]

REQUIRED = ("step", "position", "draft_token")
OPTIONAL = (
    "draft_token_id",
    "q",
    "p",
    "r",
    "accepted",
    "next_token",
    "next_token_id",
    "next_kind",
    "draft_ms",
    "verify_ms",
    "parent",
)
COLUMNS = REQUIRED + OPTIONAL
STEP_COLUMNS = ("next_token", "next_token_id", "next_kind", "draft_ms", "verify_ms")  # one value per step
MAX_ROWS = 200_000  # a row becomes a few Python objects; this bounds an upload's memory, not just its bytes
MAX_TOKEN_CHARS = 1_000  # a token is a few characters; a 1 MB "token" is an attack on every table
UNKNOWN_MODEL = "unknown (event log)"
_INT = re.compile(r"[+-]?\d{1,18}")
_TRUE = {"true", "t", "yes", "y", "1", "accepted", "accept"}
_FALSE = {"false", "f", "no", "n", "0", "rejected", "reject"}
_NULL = {"", "null", "none", "-"}  # a value that was not logged ("nan" is not one: it is an error)


@dataclass
class _Row:
    line: int  # the file line the row ends on, for messages
    step: int
    position: int | None  # None: a step-level row (a step with no drafts)
    token: str | None
    values: dict[str, Any] = field(default_factory=dict)  # parsed optional columns, missing ones left out


# ---------------------------------------------------------------- entry points


def load_eventlog(path: str | Path, max_bytes: int = MAX_BYTES) -> Trace:
    return loads_eventlog(read_file(path, max_bytes), Path(path).name, max_bytes)


def loads_eventlog(data: bytes | str, name: str = "event log", max_bytes: int = MAX_BYTES) -> Trace:
    """Parse a CSV or JSONL event log into a minimal native trace. Raises only TraceError."""
    text = _text(data, name, max_bytes)
    fmt = "jsonl" if text.lstrip().startswith("{") else "csv"
    rows, columns, ignored = _jsonl_rows(text, name) if fmt == "jsonl" else _csv_rows(text, name)
    if not rows:
        raise TraceError(f"{name} has a header but no rows: an event log needs one row per drafted token")
    return _build(rows, columns, ignored, name, fmt)


# ---------------------------------------------------------------- bytes to rows


def _text(data: bytes | str, name: str, max_bytes: int) -> str:
    text = read_text(data, name, max_bytes, "save the log as UTF-8")
    if "\x00" in text:
        raise TraceError(f"{name} contains NUL bytes: it is not a text table")
    return text


def _header(names: list[str], name: str) -> tuple[list[str], list[str]]:
    """Normalised column names (stripped, lower-case) and the ones specviz does not use."""
    cols = [c.strip().lower() for c in names]
    seen: set[str] = set()
    for c in cols:
        if c in seen and c in COLUMNS:
            raise TraceError(f"{name}: the column {c!r} appears twice in the header")
        seen.add(c)
    missing = [c for c in REQUIRED if c not in seen]
    if missing:
        found = ", ".join(short(c) for c in cols[:12]) + (", ..." if len(cols) > 12 else "")
        raise TraceError(
            f"{name}: the header has no {', '.join(repr(c) for c in missing)} column "
            f"(found: {found or 'nothing'}); an event log needs step, position and draft_token"
        )
    if "accepted" not in seen and not {"r", "p", "q"} <= seen:
        raise TraceError(
            f"{name}: the log has no 'accepted' column, and no r, p and q to derive the decisions from; "
            "add an accepted column (true/false, empty after the first rejection)"
        )
    return cols, sorted({c for c in cols if c not in COLUMNS and c})


def _csv_rows(text: str, name: str) -> tuple[list[_Row], list[str], list[str]]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except (csv.Error, StopIteration) as exc:
        raise TraceError(f"{name} line 1: not a readable CSV header ({exc})") from None
    cols, ignored = _header(header, name)
    rows: list[_Row] = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:  # an unclosed quote, a field beyond the csv module's size limit
            raise TraceError(f"{name} line {reader.line_num}: not valid CSV ({str(exc)[:80]})") from None
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(cols):
            raise TraceError(f"{name} line {reader.line_num}: {len(cells)} fields, but the header names {len(cols)}")
        record = dict(zip(cols, cells, strict=False))
        rows.append(_row(record, f"{name} line {reader.line_num}", reader.line_num, from_csv=True))
        if len(rows) > MAX_ROWS:
            raise TraceError(f"{name}: more than {MAX_ROWS:,} rows; the limit keeps the server's memory bounded")
    return rows, cols, ignored


def _jsonl_rows(text: str, name: str) -> tuple[list[_Row], list[str], list[str]]:
    rows: list[_Row] = []
    cols: list[str] | None = None
    keys: set[str] = set()
    for i, line in enumerate(text.split("\n"), start=1):  # "\n" only: tokens may hold U+2028
        if not line.strip():
            continue
        where = f"{name} line {i}"
        obj = parse_line(line, where)
        if not isinstance(obj, dict):
            raise TraceError(f"{where}: each line must be a JSON object (one row), got {short(obj)}")
        check_unicode(obj, where)
        record = {str(k).strip().lower(): v for k, v in obj.items()}
        if cols is None:
            cols, _ = _header(list(record), name)
        else:
            missing = [c for c in REQUIRED if c not in record]
            if missing:
                raise TraceError(f"{where}: no {', '.join(repr(c) for c in missing)} key")
        keys |= set(record)
        rows.append(_row(record, where, i, from_csv=False))
        if len(rows) > MAX_ROWS:
            raise TraceError(f"{name}: more than {MAX_ROWS:,} rows; the limit keeps the server's memory bounded")
    if cols is None:
        raise TraceError(f"{name} is empty")
    return rows, sorted(keys & set(COLUMNS)), sorted(k for k in keys if k not in COLUMNS)[:50]


# ---------------------------------------------------------------- cells


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip().lower() in _NULL)


def _int(v: Any, where: str, col: str, lo: int = 0) -> int:
    bad = f"{where}, column {col}: must be an integer >= {lo}, got {short(v)}"
    if isinstance(v, bool):
        raise TraceError(bad)
    if isinstance(v, int) and v >= lo and v.bit_length() < 63:
        return v
    if isinstance(v, float) and v.is_integer() and lo <= v < 2**53:
        return int(v)
    if isinstance(v, str) and _INT.fullmatch(v.strip()) and int(v.strip()) >= lo:
        return int(v.strip())  # strip() drops more than int() does (e.g. U+001C): parse what was matched
    raise TraceError(bad)


def _float(v: Any, where: str, col: str, what: str, hi: float) -> float:
    x: float | None = None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            x = float(v)
        except OverflowError:
            x = None
    elif isinstance(v, str) and len(v) <= 40:
        try:
            x = float(v.strip())
        except ValueError:
            x = None
    if x is None or not math.isfinite(x) or not 0.0 <= x <= hi:
        hint = " (leave the cell empty where nothing was logged)" if x is not None and not math.isfinite(x) else ""
        raise TraceError(f"{where}, column {col}: must be {what}, got {short(v)}{hint}")
    return x


def _bool(v: Any, where: str, col: str) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str):
        s = v.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        if s in _NULL:
            return None
    raise TraceError(f"{where}, column {col}: must be true or false (or empty after a rejection), got {short(v)}")


def _str(v: Any, where: str, col: str) -> str:
    if not isinstance(v, str):
        raise TraceError(f"{where}, column {col}: must be text, got {short(v)}")
    if len(v) > MAX_TOKEN_CHARS:
        raise TraceError(f"{where}, column {col}: {len(v):,} characters is too long for one token")
    return v


def _row(record: dict[str, Any], where: str, line: int, from_csv: bool) -> _Row:
    step = _int(record.get("step"), where, "step") if not _missing(record.get("step")) else None
    if step is None:
        raise TraceError(f"{where}, column step: empty; every row belongs to a step")
    pos_raw, tok_raw = record.get("position"), record.get("draft_token")
    position = None if _missing(pos_raw) else _int(pos_raw, where, "position")
    if position is not None and tok_raw is None:
        raise TraceError(f"{where}, column draft_token: missing for position {position}")
    token = None if position is None else _str(tok_raw, where, "draft_token")
    if position is None and isinstance(tok_raw, str) and tok_raw != "":
        raise TraceError(f"{where}, column position: empty, but the row has a draft_token {short(tok_raw)}")
    values: dict[str, Any] = {}
    for col in OPTIONAL:
        v = record.get(col)
        if col == "next_token":  # "" is an (empty) token in JSONL; an empty CSV cell means "not logged"
            if v is None or (from_csv and v == ""):
                continue
            values[col] = _str(v, where, col)
            continue
        if _missing(v):
            continue
        if col in ("draft_token_id", "next_token_id"):
            values[col] = _int(v, where, col)
        elif col == "parent":  # a draft tree: the parent's position in the step, -1 for the root
            values[col] = _int(v, where, col, lo=-1)
        elif col in ("q", "p", "r"):
            values[col] = _float(v, where, col, "a probability in [0, 1]", 1.0)
        elif col in ("draft_ms", "verify_ms"):
            values[col] = _float(v, where, col, "milliseconds >= 0", 1e12)
        elif col == "accepted":
            acc = _bool(v, where, col)
            if acc is not None:
                values[col] = acc
        elif col == "next_kind":
            kind = _str(v, where, col).strip().lower()
            if kind not in ("correction", "bonus"):
                raise TraceError(f"{where}, column next_kind: must be correction or bonus, got {short(v)}")
            values[col] = kind
    if position is None and any(c in values for c in ("draft_token_id", "q", "p", "r", "accepted", "parent")):
        raise TraceError(f"{where}, column position: empty, but the row has per-draft values")
    return _Row(line, step, position, token, values)


# ---------------------------------------------------------------- rows to a trace


def _build(rows: list[_Row], columns: list[str], ignored: list[str], name: str, fmt: str) -> Trace:
    by_step: dict[int, list[_Row]] = {}
    for row in rows:
        by_step.setdefault(row.step, []).append(row)
    if len(by_step) > MAX_STEPS:
        raise TraceError(f"{name}: {len(by_step):,} steps; the limit is {MAX_STEPS:,}")
    positions = [r.position for r in rows if r.position is not None]
    base = 1 if positions and min(positions) == 1 else 0  # a log that counts draft positions from 1
    have = set(columns)
    logged = [r.values[c] for r in rows for c in ("draft_token_id", "next_token_id") if c in r.values]
    ids = _TokenIds("draft_token_id" in have, start=max(logged, default=-1) + 1)
    derive = "accepted" not in have  # decisions from r < min(1, p/q)
    sampling = {"r", "p", "q"} <= have
    steps = []
    for k, number in enumerate(sorted(by_step)):
        steps.append(_step(k, number, by_step[number], base, ids, derive, sampling, name))
    gamma = max((len(s["draft"]) for s in steps), default=0)
    meta: dict[str, Any] = {
        "target": {"name": UNKNOWN_MODEL},
        "draft": {"name": UNKNOWN_MODEL},
        "gamma": max(gamma, 1),
        "source": {
            "kind": "eventlog",
            "file": name,
            "format": fmt,
            "rows": len(rows),
            "columns": [c for c in COLUMNS if c in have],
            "ignored_columns": ignored[:50],
            "synthetic_token_ids": ids.synthetic,
            "first_position": base,
        },
    }
    if sampling:
        meta["rule"] = {"name": "sampling", "params": {}, "lossless": True}
    # no prompt: the log does not have it (so no context lengths either)
    trace: Trace = {"format": FORMAT, "version": VERSION, "meta": meta, "prompt": {}, "steps": steps}  # type: ignore[typeddict-item]
    finish(trace, "stopped")
    problems = validate(trace, strict=False)
    if problems:  # e.g. a logged r on the wrong side of min(1, p/q) for its accepted flag
        numbers = sorted(by_step)
        lines = {
            (k, r.position - base): r.line for k, n in enumerate(numbers) for r in by_step[n] if r.position is not None
        }
        raise TraceError(_locate(name, problems[0], lines, numbers, base))
    return trace


class _TokenIds:
    """Token ids: the log's own, or numbers given to each distinct token text when it has none."""

    def __init__(self, logged: bool, start: int) -> None:
        self.logged = logged  # draft_token_id is a column: ids are the log's own
        self.by_text: dict[str, int] = {}
        self.synthetic = not logged
        self.next_free = start if logged else 0  # made-up ids never collide with logged ones

    def draft(self, row: _Row, where: str) -> int:
        token = row.token or ""
        if self.logged:
            if "draft_token_id" not in row.values:
                raise TraceError(f"{where}, column draft_token_id: empty, but other rows give ids")
            tid = int(row.values["draft_token_id"])
            self.by_text.setdefault(token, tid)
            return tid
        return self._for(token)

    def next(self, token: str, logged: int | None) -> int:
        if logged is not None and self.logged:  # without draft ids, every id is made up, consistently
            return logged
        if self.logged and token not in self.by_text:
            self.synthetic = True  # a next token whose id the log does not give
        return self._for(token)

    def _for(self, token: str) -> int:
        if token not in self.by_text:
            self.by_text[token] = self.next_free
            self.next_free += 1
        return self.by_text[token]


def _one(rows: list[_Row], col: str, where: str) -> Any:
    """A per-step column: every row of the step that gives it must give the same value."""
    found = [(r.line, r.values[col]) for r in rows if col in r.values]
    for line, v in found[1:]:
        if v != found[0][1]:
            raise TraceError(
                f"{where} (lines {found[0][0]} and {line}), column {col}: different values in one step "
                f"({short(found[0][1])} and {short(v)})"
            )
    return found[0][1] if found else None


def _step(
    k: int, number: int, rows: list[_Row], base: int, ids: _TokenIds, derive: bool, sampling: bool, name: str
) -> dict[str, Any]:
    where = f"{name} step {number}"
    drafts = sorted((r for r in rows if r.position is not None), key=lambda r: r.position or 0)
    for j, r in enumerate(drafts):
        assert r.position is not None
        want = j + base
        if r.position != want:
            if j > 0 and drafts[j - 1].position == r.position:
                raise TraceError(f"{where}: lines {drafts[j - 1].line} and {r.line} both give position {r.position}")
            raise TraceError(
                f"{where} line {r.line}: position {r.position}, but position {want} is missing "
                f"(positions count 0, 1, 2, ... within each step{', from 1 in this log' if base else ''})"
            )
    if any(r.values.get("parent", j - 1 + base) != j - 1 + base for j, r in enumerate(drafts)):
        return _tree_step(k, number, rows, drafts, base, ids, name)
    draft, verify = [], []
    rejected_at: int | None = None
    for j, r in enumerate(drafts):
        at = f"{name} line {r.line}"
        v = r.values
        entry: dict[str, Any] = {"token_id": ids.draft(r, at), "token": r.token or ""}
        if "q" in v:
            entry["q"] = v["q"]
        check: dict[str, Any] = {"accepted": None}
        if "p" in v:
            check["p"] = v["p"]
        if "r" in v:
            check["r"] = v["r"]
        if sampling and "p" in v and "q" in v:
            check["accept_prob"] = min(1.0, v["p"] / v["q"]) if v["q"] > 0 else float(v["p"] > 0)
        acc: bool | None
        if derive and rejected_at is not None:
            acc = None
        elif derive:
            if "accept_prob" not in check or "r" not in v:
                raise TraceError(
                    f"{at}: r, p or q is empty, and without an accepted column all three are needed to derive "
                    "the decision"
                )
            acc = bool(v["r"] < check["accept_prob"])
        else:
            acc = v.get("accepted")
            if rejected_at is not None:
                if acc is True:
                    raise TraceError(
                        f"{at}, column accepted: true after the rejection at position {rejected_at + base} of "
                        f"step {number}; a step accepts only a prefix of its drafts"
                    )
                acc = None  # never evaluated: logs often say false here; specviz says null
            elif acc is None:
                raise TraceError(
                    f"{at}, column accepted: empty, but no earlier draft of step {number} was rejected "
                    "(only drafts after the first rejection may be empty)"
                )
        if acc is False:
            rejected_at = j
        if acc is None:
            check.pop("accept_prob", None)
            check.pop("r", None)
        check["accepted"] = acc
        draft.append(entry)
        verify.append(check)
    n = rejected_at if rejected_at is not None else len(drafts)
    step: dict[str, Any] = {"index": k, "draft": draft, "verify": verify, "n_accepted": n}
    return _step_end(step, rows, n, len(drafts), ids, where)


def _tree_step(
    k: int, number: int, rows: list[_Row], drafts: list[_Row], base: int, ids: _TokenIds, name: str
) -> dict[str, Any]:
    """A step whose rows form a draft tree (a `parent` column that is not "the previous position"):
    nodes in position order, parent before child; decisions come from `accepted` (true, false, or
    empty for a node never tested). The accepted path is walked from the root, and draft/verify show
    the main line, as a recorded tree step does (docs/TRACE_FORMAT.md)."""
    where = f"{name} step {number}"
    nodes: list[dict[str, Any]] = []
    for j, r in enumerate(drafts):
        at = f"{name} line {r.line}"
        v = r.values
        parent = v.get("parent", j - 1 + base)
        parent = -1 if parent < base else parent - base
        if parent >= j:
            raise TraceError(f"{at}, column parent: {parent + base}, but a node's parent must come before it")
        if "r" in v and "accepted" not in v:
            raise TraceError(f"{at}, column accepted: empty; a tree's decisions cannot be derived from r alone")
        nodes.append(
            {
                "token_id": ids.draft(r, at),
                "token": r.token or "",
                "parent": parent,
                "depth": 1 if parent < 0 else nodes[parent]["depth"] + 1,
                "q": v.get("q"),
                "p": v.get("p"),
                "accepted": v.get("accepted"),
                "r": v.get("r") if v.get("accepted") is not None else None,
                "accept_prob": None,
                "p_test": None,
                "q_test": None,
                "ratio": None,
                "cutoff": None,
                "score": None,
            }
        )
    path: list[int] = []
    node = -1
    while True:
        kids = [j for j, nd in enumerate(nodes) if nd["parent"] == node]
        won = [j for j in kids if nodes[j]["accepted"] is True]
        if len(won) > 1:
            raise TraceError(f"{where}: two children of one node are both accepted; a step keeps one path")
        if not won:
            break
        path.append(won[0])
        node = won[0]
    for nd in nodes:  # below a node off the path nothing was tested: logs often say false there
        if nd["parent"] >= 0 and nd["parent"] not in path:
            nd["accepted"], nd["r"] = None, None
    rejected = [j for j in range(len(nodes)) if nodes[j]["parent"] == node and nodes[j]["accepted"] is False]
    main = list(path)
    if rejected:  # the first child tested there, then its first-child line (never evaluated)
        j = rejected[0]
        while j is not None:
            main.append(j)
            j = next((c for c, nd in enumerate(nodes) if nd["parent"] == j), None)
    draft = [
        {
            "token_id": nodes[j]["token_id"],
            "token": nodes[j]["token"],
            **({"q": nodes[j]["q"]} if nodes[j]["q"] is not None else {}),
        }
        for j in main
    ]
    verify = [
        {
            "accepted": nodes[j]["accepted"],
            **({"p": nodes[j]["p"]} if nodes[j]["p"] is not None else {}),
            **({"r": nodes[j]["r"]} if nodes[j]["r"] is not None else {}),
        }
        for j in main
    ]
    for j in main[len(path) + 1 :]:  # below a rejected node nothing was tested
        verify[main.index(j)]["accepted"] = None
    step: dict[str, Any] = {
        "index": k,
        "draft": draft,
        "verify": verify,
        "n_accepted": len(path),
        "tree": {"shape": "event log", "nodes": nodes, "path": path, "main": main},
    }
    return _step_end(step, rows, len(path), len(path) + (1 if rejected else 0), ids, where)


def _step_end(step: dict[str, Any], rows: list[_Row], n: int, g: int, ids: _TokenIds, where: str) -> dict[str, Any]:
    """The step's own token and timings (per-step columns); n of g drafts on its line were decided
    accepted (g counts the rejected one, if any)."""
    token = _one(rows, "next_token", where)
    kind = _one(rows, "next_kind", where)
    want = "bonus" if n == g else "correction"
    if kind is not None and kind != want:
        raise TraceError(f"{where}, column next_kind: {kind}, but {n} of {g} drafts were accepted, so it is a {want}")
    if token is not None:
        step["next"] = {"token_id": ids.next(token, _one(rows, "next_token_id", where)), "token": token, "kind": want}
    elif kind is not None or _one(rows, "next_token_id", where) is not None:
        raise TraceError(f"{where}, column next_token: empty, but the step gives its next_kind or next_token_id")
    draft_ms, verify_ms = _one(rows, "draft_ms", where), _one(rows, "verify_ms", where)
    if draft_ms is not None and verify_ms is not None:
        step["timing_ms"] = {"draft": draft_ms, "verify": verify_ms}
    return step


def _locate(name: str, problem: str, lines: dict[tuple[int, int], int], numbers: list[int], base: int) -> str:
    """A validate() message ("step 3, position 1: ...") in the log's own terms: its line and step number."""
    m = re.match(r"step (\d+)(?:, position (\d+))?", problem)
    if not m:
        return f"{name}: {problem}"
    k = int(m.group(1))
    number = numbers[k] if k < len(numbers) else k
    if m.group(2) is None:
        return f"{name} step {number}" + problem[m.end() :]
    j = int(m.group(2))
    return f"{name} line {lines.get((k, j), '?')} (step {number}, position {j + base})" + problem[m.end() :]
