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
kind of upload, is specviz.formats.opener; reading the rows and their cells, specviz.formats.eventlog_rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from specviz.formats.eventlog_rows import COLUMNS, MAX_ROWS, REQUIRED, Row, read_rows
from specviz.trace import (
    FORMAT,
    MAX_BYTES,
    MAX_STEPS,
    VERSION,
    Trace,
    TraceError,
    finish,
    read_file,
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

UNKNOWN_MODEL = "unknown (event log)"


# ---------------------------------------------------------------- entry points


def load_eventlog(path: str | Path, max_bytes: int = MAX_BYTES) -> Trace:
    return loads_eventlog(read_file(path, max_bytes), Path(path).name, max_bytes)


def loads_eventlog(data: bytes | str, name: str = "event log", max_bytes: int = MAX_BYTES) -> Trace:
    """Parse a CSV or JSONL event log into a minimal native trace. Raises only TraceError."""
    rows, columns, ignored, fmt = read_rows(data, name, max_bytes)
    if not rows:
        raise TraceError(f"{name} has a header but no rows: an event log needs one row per drafted token")
    return _build(rows, columns, ignored, name, fmt)


# ---------------------------------------------------------------- rows to a trace


def _build(rows: list[Row], columns: list[str], ignored: list[str], name: str, fmt: str) -> Trace:
    by_step: dict[int, list[Row]] = {}
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

    def draft(self, row: Row, where: str) -> int:
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


def _one(rows: list[Row], col: str, where: str) -> Any:
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
    k: int, number: int, rows: list[Row], base: int, ids: _TokenIds, derive: bool, sampling: bool, name: str
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
    k: int, number: int, rows: list[Row], drafts: list[Row], base: int, ids: _TokenIds, name: str
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


def _step_end(step: dict[str, Any], rows: list[Row], n: int, g: int, ids: _TokenIds, where: str) -> dict[str, Any]:
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
