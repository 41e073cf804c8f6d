"""Writing and reading traces (.json, .json.gz, .jsonl): every file is hostile, `loads` raises only
TraceError; older versions are upgraded on the way in (schema.UPGRADES)."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import zlib
from pathlib import Path
from typing import IO, Any

from specviz.trace.problems import _is_int, short
from specviz.trace.schema import (
    _SURROGATE_ESCAPE,
    FORMAT,
    GZIP_MAGIC,
    MAX_BYTES,
    MAX_INT_DIGITS,
    MAX_STEPS,
    UPGRADES,
    VERSION,
    Step,
    Trace,
    TraceError,
    finish,
)
from specviz.trace.validate import _guarded

# ---------------------------------------------------------------- writing


def _line(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def dumps(trace: Trace) -> str:
    return _line(trace)


def dump(trace: Trace, path: str | Path) -> None:
    """Write by suffix: .jsonl (header, steps, output), .gz (gzip-compressed JSON), else JSON.

    All or nothing: the file is written beside its name and renamed into place, so a trace that
    cannot be written (a NaN, a full disk) leaves no file, and an old file at `path` is kept.
    Raises ValueError for a value JSON cannot hold (NaN, infinity) and OSError from the disk.
    """
    path = Path(path)
    name = path.name
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    try:
        if name.endswith(".jsonl"):
            with JsonlWriter(tmp, trace) as w:
                for step in trace["steps"]:
                    w.step(step)
                if "output" in trace:
                    w.output(trace["output"])
        else:
            data = dumps(trace).encode()
            if name.endswith(".gz"):
                data = gzip.compress(data, mtime=0)  # mtime 0: the same trace gives the same bytes
            tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class JsonlWriter:
    """Streams a trace: the header first, each step as it comes (flushed), the output last.

    Each record is one line ending in "\\n", written and flushed in one call, so a run killed at
    any moment leaves every finished step readable (see `loads`).
    """

    def __init__(self, path: str | Path, trace: Trace) -> None:
        self._f: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._line({k: v for k, v in trace.items() if k not in ("steps", "output")})

    def _line(self, obj: object) -> None:
        self._f.write(_line(obj) + "\n")
        self._f.flush()

    def step(self, step: Step) -> None:
        """Append one step. A step JSON cannot hold (a NaN) raises ValueError and writes nothing."""
        self._line(step)

    def output(self, output: dict[str, Any]) -> None:
        self._line({"output": output})

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- reading


def _no_constant(name: str) -> None:
    raise TraceError(f"the file contains {name}, which JSON does not allow; probabilities must be finite numbers")


def _finite_float(s: str) -> float:
    x = float(s)
    if not math.isfinite(x):  # "1e400" parses to inf: as bad as a literal Infinity
        raise TraceError(f"the number {s[:30]} is too large to be a float")
    return x


def _short_int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_INT_DIGITS:  # also spares int() its quadratic time on huge literals
        raise TraceError(f"an integer with {len(s.lstrip('-'))} digits is too large for a trace")
    return int(s)


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float, parse_int=_short_int)


def raw_decode(text: str, start: int, where: str) -> tuple[Any, int]:
    """Parse one JSON value at text[start:]; every failure becomes a TraceError naming `where`."""
    try:
        return _DECODER.raw_decode(text, start)
    except TraceError as exc:
        raise TraceError(f"{where}: {exc}") from None
    except RecursionError:
        raise TraceError(f"{where}: JSON nested too deeply to be a trace") from None
    except json.JSONDecodeError as exc:
        raise TraceError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # anything else the parser can throw on hostile input
        raise TraceError(f"{where}: not valid JSON ({str(exc)[:80]})") from None


def parse_line(line: str, where: str) -> Any:
    obj, end = raw_decode(line, len(line) - len(line.lstrip()), where)
    if line[end:].strip():
        raise TraceError(f"{where}: unexpected data after the JSON value (column {end + 1})")
    return obj


def read_text(data: bytes | bytearray | memoryview | str, name: str, max_bytes: int, hint: str) -> str:
    """Untrusted bytes → text: size cap, gzip (capped too), non-empty, strict UTF-8, no BOM.

    Every loader of user files starts here, so each limit is enforced in one place.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    elif not isinstance(data, bytes):
        data = bytes(data)  # bytearray, memoryview (what an upload widget may hand over)
    if len(data) > max_bytes:
        raise TraceError(f"{name} is {_mb(len(data))}; the limit is {_mb(max_bytes)}")
    if data[:2] == GZIP_MAGIC:
        data = _gunzip(data, name, max_bytes)
    if not data.strip():
        raise TraceError(f"{name} is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{name} is not UTF-8 text (bad byte at offset {exc.start}); {hint}") from None
    return text.removeprefix("\ufeff")


def loads(data: bytes | str, name: str = "trace", max_bytes: int = MAX_BYTES) -> Trace:
    """Parse bytes (JSON, gzip-compressed JSON, or JSONL) into a trace dict.

    Raises TraceError with a readable message for anything that is not a trace, never anything
    else. Only the top-level shape is checked here; the rest is validate()'s job.

    A JSONL file without its output line is an interrupted run. Its complete step lines are kept
    (a last line cut off mid-write is dropped), and when those steps pass validate(), `output`
    is rebuilt from them with finish() and marked `"recovered": true`, so the trace replays like
    any other. When they do not, `output` stays missing and validate() says why.
    """
    text = read_text(data, name, max_bytes, "is it a trace file?")
    start = len(text) - len(text.lstrip())
    if not text.startswith("{", start):
        raise TraceError(f"{name} does not start with a JSON object; a trace is a JSON object or JSONL lines")
    head, end = raw_decode(text, start, name)
    rest = text[end:]
    jsonl = False
    if not rest.strip():
        trace = head
    elif isinstance(head, dict) and "steps" not in head and rest.lstrip(" \t\r").startswith("\n"):
        trace, jsonl = _from_jsonl(head, text, end, name), True
    else:
        line = text.count("\n", 0, end + len(rest) - len(rest.lstrip())) + 1
        raise TraceError(f"{name} line {line}: unexpected data after the JSON object")
    _check_top_level(trace, name)
    if _SURROGATE_ESCAPE.search(text):
        check_unicode(trace, name)
    if jsonl and "output" not in trace and not _guarded(trace, 1, check_output=False):
        finish(trace)
        trace["output"]["recovered"] = True
    return trace  # type: ignore[return-value]


def _check_top_level(trace: object, name: str) -> None:
    if not isinstance(trace, dict):
        raise TraceError(f"{name}: the top level must be a JSON object")
    if trace.get("format") != FORMAT:
        raise TraceError(f'{name}: not a specviz trace ("format" must be "{FORMAT}", got {short(trace.get("format"))})')
    _upgrade(trace, name)
    for key, typ, what in (("meta", dict, "object"), ("prompt", dict, "object"), ("steps", list, "array")):
        if not isinstance(trace.get(key), typ):
            hint = " (a JSONL trace needs at least one step line)" if key == "steps" and "steps" not in trace else ""
            raise TraceError(f'{name}: "{key}" is missing or is not a JSON {what}{hint}')
    if len(trace["steps"]) > MAX_STEPS:
        raise TraceError(f"{name}: {len(trace['steps'])} steps; the limit is {MAX_STEPS}")


def check_unicode(obj: Any, name: str) -> None:
    """Refuse a lone surrogate (JSON's "\\ud800"): Python keeps it, but no UTF-8 writer, browser or
    download can carry it, so a trace holding one would fail far from here."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            bad = next((ch for ch in x if "\ud800" <= ch <= "\udfff"), None)
            if bad is not None:
                raise TraceError(
                    f"{name} contains the escape \\u{ord(bad):04x}, half of a surrogate pair: not valid Unicode text"
                )
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


def _upgrade(trace: dict[str, Any], name: str) -> None:
    """Bring an older trace up to VERSION through UPGRADES, or refuse it naming its version."""
    version = trace.get("version")
    if "version" not in trace:
        raise TraceError(f'{name}: the trace has no "version"; this specviz reads version {VERSION}')
    if not _is_int(version):
        raise TraceError(f"{name}: trace version {short(version)} is not supported; versions are integers")
    if version > VERSION:
        raise TraceError(
            f"{name}: trace version {version} is not supported; this specviz reads version {VERSION} "
            "(the file was written by a newer specviz: update specviz to open it)"
        )
    while version < VERSION:
        upgrade = UPGRADES.get(version)
        if upgrade is None:
            known = ", ".join(str(v) for v in sorted(UPGRADES))
            can = f"it upgrades versions {known}" if known else "there is no older version it can upgrade"
            raise TraceError(
                f"{name}: trace version {version} is not supported; this specviz reads version {VERSION} ({can})"
            )
        try:
            upgrade(trace)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise TraceError(f"{name}: cannot upgrade this version-{version} trace ({type(exc).__name__})") from None
        version += 1
        trace["version"] = version


def _from_jsonl(head: dict[str, Any], text: str, end: int, name: str) -> dict[str, Any]:
    """Steps and output from the lines after the header (which ends at text[end])."""
    first_no = text.count("\n", 0, end) + 2  # file line number of the line after the header
    lines = text[text.index("\n", end) + 1 :].split("\n")  # only "\n": tokens may hold U+2028 or U+0085
    last = max((i for i, ln in enumerate(lines) if ln.strip()), default=-1)
    steps: list[Any] = []
    output: Any = None
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        where = f"{name} line {first_no + i}"
        if output is not None:
            raise TraceError(f"{where}: more data after the output line")
        try:
            obj = parse_line(line, where)
        except TraceError:
            if i == last and not text.endswith("\n"):
                break  # a run killed mid-write leaves its last line unfinished: keep the steps before it
            raise
        if isinstance(obj, dict) and set(obj) == {"output"}:
            output = obj["output"]
            continue
        steps.append(obj)
        if len(steps) > MAX_STEPS:
            raise TraceError(f"{name}: more than {MAX_STEPS} steps")
    trace = dict(head)
    trace["steps"] = steps
    if output is not None:
        trace["output"] = output
    return trace


def _gunzip(data: bytes, name: str, cap: int) -> bytes:
    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            # read in bounded chunks: a gzip bomb stops at the cap, not at the end of memory
            while len(out) <= cap and (chunk := f.read(1 << 20)):
                out += chunk
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise TraceError(f"{name} looks gzip-compressed but is damaged ({str(exc)[:100]})") from None
    if len(out) > cap:
        raise TraceError(f"{name} decompresses to more than {_mb(cap)}; refusing it")
    return bytes(out)


def read_file(path: str | Path, max_bytes: int = MAX_BYTES) -> bytes:
    """At most max_bytes of a file, or TraceError: /dev/zero or a growing file cannot exhaust memory."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise TraceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise TraceError(f"{path.name} is larger than the limit of {_mb(max_bytes)}")
    return data


def load(path: str | Path, max_bytes: int = MAX_BYTES) -> Trace:
    return loads(read_file(path, max_bytes), Path(path).name, max_bytes)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n} bytes"
