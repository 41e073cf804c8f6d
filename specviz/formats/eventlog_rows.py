"""Event logs, bytes to rows: the columns, the header check, and every cell parsed as hostile input.

specviz.formats.eventlog turns the rows into a trace; docs/EVENTLOG.md describes every column. Every
function raises only TraceError, whose message names the line and the column. Pure Python.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from typing import Any

from specviz.trace import TraceError, check_unicode, parse_line, read_text, short

__all__ = ["COLUMNS", "MAX_ROWS", "OPTIONAL", "REQUIRED", "Row", "read_rows"]

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
MAX_ROWS = 200_000  # a row becomes a few Python objects; this bounds an upload's memory, not just its bytes
MAX_TOKEN_CHARS = 1_000  # a token is a few characters; a 1 MB "token" is an attack on every table
_INT = re.compile(r"[+-]?\d{1,18}")
_TRUE = {"true", "t", "yes", "y", "1", "accepted", "accept"}
_FALSE = {"false", "f", "no", "n", "0", "rejected", "reject"}
_NULL = {"", "null", "none", "-"}  # a value that was not logged ("nan" is not one: it is an error)


@dataclass
class Row:
    line: int  # the file line the row ends on, for messages
    step: int
    position: int | None  # None: a step-level row (a step with no drafts)
    token: str | None
    values: dict[str, Any] = field(default_factory=dict)  # parsed optional columns, missing ones left out


# ---------------------------------------------------------------- bytes to rows


def read_rows(data: bytes | str, name: str, max_bytes: int) -> tuple[list[Row], list[str], list[str], str]:
    """(rows, header columns, ignored columns, "csv" or "jsonl") of an event log. Raises only TraceError."""
    text = _text(data, name, max_bytes)
    fmt = "jsonl" if text.lstrip().startswith("{") else "csv"
    rows, columns, ignored = _jsonl_rows(text, name) if fmt == "jsonl" else _csv_rows(text, name)
    return rows, columns, ignored, fmt


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


def _csv_rows(text: str, name: str) -> tuple[list[Row], list[str], list[str]]:
    first = text.split("\n", 1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except (csv.Error, StopIteration) as exc:
        raise TraceError(f"{name} line 1: not a readable CSV header ({exc})") from None
    cols, ignored = _header(header, name)
    rows: list[Row] = []
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


def _jsonl_rows(text: str, name: str) -> tuple[list[Row], list[str], list[str]]:
    rows: list[Row] = []
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


def _row(record: dict[str, Any], where: str, line: int, from_csv: bool) -> Row:
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
    return Row(line, step, position, token, values)
