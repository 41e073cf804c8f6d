"""Traces for the pages: the built-in samples, this session's runs and uploads, the trace picker
that Step through and Statistics share, what a minimal trace lacks, and derived data cached for
every page. Session state holds only JSON-able data (traces, labels).

Imports no page module (see specviz/ui/__init__.py).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from specviz import figures as fg
from specviz.figures import literal
from specviz.formats.opener import loads_any
from specviz.formats.runsummary import sniff_summary
from specviz.models.presets import REPO_ROOT
from specviz.run import live
from specviz.teach.player import meta_line
from specviz.trace import MAX_BYTES, Trace, TraceError, finish, loads, validate
from specviz.ui.common import md_escape

__all__ = [
    "TraceChoice",
    "choose_trace",
    "draft_words",
    "list_samples",
    "load_sample",
    "meta_md",
    "read_upload",
    "sample_traces",
    "session_traces",
    "show_gaps",
]


SAMPLES_DIR = Path(os.environ.get("SPECVIZ_SAMPLES", REPO_ROOT / "assets" / "traces"))
SAMPLE_ORDER = ("sampling-t0.7", "greedy", "threshold", "prompt-lookup", "tree-greedy", "tree-sampling", "long")
SUFFIXES = (".json.gz", ".json", ".jsonl")
MAX_UPLOADS = 5

# an upload's size; .streamlit/config.toml's server.maxUploadSize caps what reaches the server at all
MAX_UPLOAD_BYTES = min(MAX_BYTES, int(live.env_number("SPECVIZ_MAX_UPLOAD_MB", 50) * 2**20))
MAX_UPLOAD_STEPS = int(live.env_number("SPECVIZ_MAX_UPLOAD_STEPS", 20_000))


@dataclass(frozen=True)
class TraceChoice:
    key: str  # "sample:NAME", "run:ID" or "upload:SHA"
    label: str
    trace: Trace
    cache_key: str  # changes whenever the content can have changed

    @property
    def sample(self) -> str | None:
        return self.key.removeprefix("sample:") if self.key.startswith("sample:") else None


def list_samples() -> dict[str, Path]:
    """Built-in sample traces by name, in teaching order."""
    if not SAMPLES_DIR.is_dir():
        return {}
    found = {}
    for path in SAMPLES_DIR.iterdir():
        for suffix in SUFFIXES:
            if path.name.endswith(suffix) and path.is_file():
                found[path.name.removesuffix(suffix)] = path
    rank = {n: i for i, n in enumerate(SAMPLE_ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


@st.cache_resource(show_spinner=False, max_entries=32)
def _load_sample(path: str, mtime_ns: int) -> Trace | str:
    """A sample trace (shared read-only by every session), or the reason it cannot be shown."""
    try:
        trace = loads(Path(path).read_bytes(), Path(path).name)
    except (OSError, TraceError) as exc:
        return str(exc)
    problems = validate(trace)
    return f"{Path(path).name} is not a valid trace: {problems[0]}" if problems else trace


def load_sample(name: str) -> Trace | str:
    path = list_samples().get(name)
    if path is None:
        return f"there is no sample trace called {name!r}"
    return _load_sample(str(path), path.stat().st_mtime_ns)


def _sample_label(name: str, trace: Trace | str) -> str:
    if isinstance(trace, str):
        return f"Sample · {name} (unreadable)"
    info = trace.get("meta", {}).get("sample") or {}
    return f"Sample · {info.get('title') or name}"


def sample_traces() -> dict[str, Trace]:
    """Every readable sample by name; the built-in toy example when there are none."""
    out = {}
    for name in list_samples():
        trace = load_sample(name)
        if not isinstance(trace, str) and trace["steps"]:
            out[name] = trace
    return out or {"toy": fg.toy_trace()}


def session_traces() -> dict[str, dict[str, Any]]:
    """This session's own traces (runs and uploads): key → {"trace", "label"}. Plain JSON data."""
    return st.session_state.setdefault("traces", {})


def add_trace(key: str, trace: Trace, label: str, limit: int) -> None:
    store = session_traces()
    prefix = key.split(":")[0] + ":"
    mine = [k for k in store if k.startswith(prefix)]
    for old in mine[: max(0, len(mine) - limit + 1)]:
        del store[old]
    store[key] = {"trace": trace, "label": label}


def read_upload(name: str, data: bytes) -> Trace | str:
    """Parse and check an uploaded file: the trace, or what is wrong with it as safe markdown.

    A native trace (JSON, gzip, JSONL) or an event log (CSV, JSONL rows). Minimal traces are
    accepted (validate with strict=False); the pages then say what they lack (show_gaps).
    """
    safe_name = md_escape(literal(name, 120))
    engine = sniff_summary(data, name)
    if engine is not None:
        return (
            f"{safe_name} is a run summary from {md_escape(engine)}: totals, not steps, so it cannot be stepped "
            "through. Open it under **Statistics from a serving engine** on the Statistics or Compare page."
        )
    try:
        trace = loads_any(data, name, MAX_UPLOAD_BYTES)
    except TraceError as exc:
        return md_escape(literal(str(exc), 600))
    if len(trace["steps"]) > MAX_UPLOAD_STEPS:
        return f"{safe_name} has {len(trace['steps']):,} steps; this server shows traces of up to {MAX_UPLOAD_STEPS:,}."
    problems = validate(trace, strict=False)
    if not problems and "output" not in trace:
        # an interrupted JSONL recording (or a minimal trace) has no output: rebuild it from its steps
        finish(trace, "stopped")
        problems = validate(trace, strict=False)
    if problems:
        listed = "\n".join(f"- {md_escape(literal(p, 300))}" for p in problems[:8])
        more = f"\n- … and {len(problems) - 8} more" if len(problems) > 8 else ""
        return f"{safe_name} is not a valid specviz trace:\n{listed}{more}"
    return trace


def _handle_upload(page: str) -> str | None:
    """Read a newly uploaded file into the store; return its key when it is new and valid."""
    up = st.file_uploader(
        "…or upload a trace (.json, .json.gz, .jsonl) or an event log (.csv)",
        type=["json", "gz", "jsonl", "csv"],
        key=f"{page}_upload",
        help="Record one with `python -m specviz record … -o run.json`, download one from the Live page, or "
        "export your engine's log as CSV: one row per drafted token (docs/EVENTLOG.md).",
    )
    if up is None:
        return None
    data = up.getvalue()
    key = "upload:" + hashlib.sha256(data).hexdigest()[:16]
    errors: dict[str, str] = st.session_state.setdefault("upload_errors", {})
    if key in errors:
        st.error(errors[key])
        return None
    if key in session_traces():
        return None
    trace = read_upload(up.name, data)
    if isinstance(trace, str):
        errors[key] = f"Could not open this upload. {trace}"
        st.error(errors[key])
        return None
    add_trace(key, trace, f"Upload · {literal(up.name, 80)}", MAX_UPLOADS)
    return key


def choose_trace(page: str) -> TraceChoice | None:
    """The trace picker shared by replay and statistics; honours and updates ?trace=NAME."""
    samples = list_samples()
    state = st.session_state
    wanted = st.query_params.get("trace")
    if wanted and wanted in samples and state.get("trace_key") != f"sample:{wanted}":
        state["trace_key"] = f"sample:{wanted}"
        state.pop(f"{page}_trace", None)
    if wanted and wanted not in samples:  # a mistyped or stale link: say so instead of showing another trace
        st.warning(
            f"There is no sample trace called “{md_escape(literal(wanted, 80))}”, so this page shows another one. "
            f"The samples are: {md_escape(', '.join(samples))}. Uploaded traces and your own runs live only in your "
            "browser session, so a link cannot open them: share the file (or a lesson file) instead."
        )
    pick, upload = st.columns([3, 2])
    with upload:
        new = _handle_upload(page)
    if new is not None:
        state["trace_key"] = new
        state.pop(f"{page}_trace", None)
        st.query_params.pop("step", None)
    loaded = {f"sample:{n}": load_sample(n) for n in samples}
    labels = {k: _sample_label(k.removeprefix("sample:"), t) for k, t in loaded.items()}
    labels |= {k: v["label"] for k, v in session_traces().items()}
    if not labels:
        with pick:
            st.info(
                "No sample traces yet. Run one on the Live page, upload a trace, or record the samples with "
                "`python scripts/record_samples.py`."
            )
        return None
    options = list(labels)
    if state.get("trace_key") not in labels:
        state["trace_key"] = options[0]
    if state.get(f"{page}_trace") not in labels:
        state[f"{page}_trace"] = state["trace_key"]

    def picked() -> None:
        state["trace_key"] = chosen = state[f"{page}_trace"]
        st.query_params.pop("step", None)
        if chosen.startswith("sample:"):
            st.query_params["trace"] = chosen.removeprefix("sample:")
        else:
            st.query_params.pop("trace", None)

    with pick:
        key = st.selectbox("Trace", options, key=f"{page}_trace", format_func=labels.__getitem__, on_change=picked)
    state["trace_key"] = key
    if key.startswith("sample:"):
        trace = loaded[key]
        if isinstance(trace, str):
            st.error(f"This sample cannot be shown: {md_escape(trace)}")
            return None
        if st.query_params.get("trace") != key.removeprefix("sample:"):
            # written only when it changes: any write resets the address bar, and with it the step
            # the browser player has put there
            st.query_params["trace"] = key.removeprefix("sample:")
        cache_key = f"{key}@{samples[key.removeprefix('sample:')].stat().st_mtime_ns}"
    else:
        trace = session_traces()[key]["trace"]
        if "trace" in st.query_params:
            del st.query_params["trace"]
        cache_key = key
        with pick:  # the URL cannot carry it: say so rather than let a shared link open something else
            st.caption(
                "This trace lives in your browser session only, so a link to this page will not open it for "
                "someone else: share the file (or download it from the Live page) instead."
            )
    info = trace.get("meta", {}).get("sample") or {}
    with pick:
        if isinstance(info, dict) and info.get("description"):
            st.caption(md_escape(literal(info["description"], 400)))
        if isinstance(info, dict) and info.get("placeholder"):
            st.caption(
                ":orange[Placeholder: recorded with prompt lookup while the default draft model was being trained.]"
            )
        if words := draft_words(trace):
            st.caption(words)
    show_gaps(trace, cache_key)
    return TraceChoice(key, labels[key], trace, cache_key)


def show_gaps(trace: Trace, cache_key: str | None = None) -> None:
    """Say what a minimal trace (an event log, another engine's log) does not record, and what that costs."""
    gaps = _gaps(cache_key, trace) if cache_key is not None else fg.missing_parts(trace)
    source = trace.get("meta", {}).get("source")
    lines = []
    if isinstance(source, dict) and source.get("kind") == "eventlog":  # meta.source is not validated: be wary
        listed = [
            source.get(key) if isinstance(source.get(key), list) else [] for key in ("columns", "ignored_columns")
        ]
        cols, ignored = (", ".join(str(c)[:40] for c in items[:12]) for items in listed)
        lines.append(f"Imported from an event log ({str(source.get('rows', '?'))[:12]} rows; columns: {cols}).")
        if ignored:
            lines.append(f"Columns specviz does not use were ignored: {ignored}.")
    if not gaps and not lines:
        return
    text = md_escape(literal(" ".join(lines), 1000))
    if gaps:
        text += ("\n\n" if text else "") + "This trace records no:\n\n"
        text += "\n".join(f"- {md_escape(g.sentence().removeprefix('no '))}" for g in gaps)
    st.info(text, icon=":material/info:")


def meta_md(trace: Trace) -> str:
    return md_escape(meta_line(trace))


# ---------------------------------------------------------------- what a trace's draft reads


# what a feature draft reads that a separate small model does not: shown where the pair is shown
FEATURE_DRAFT_WORDS = (
    "**Feature draft** (EAGLE-style): besides the tokens, this draft reads the evaluation model's own last "
    "hidden state, the vector its output layer turns into p, at every position the evaluation model has "
    "verified. A separate small draft model sees only the tokens and has to rebuild what the big model "
    "'thinks' from scratch; this one-layer head starts from it and predicts the next hidden state, which the "
    "evaluation model's own output layer turns into q. Verification is unchanged, so the output is too."
)


def draft_words(trace_or_kind: Trace | str) -> str | None:
    """FEATURE_DRAFT_WORDS for a feature draft (a trace or a meta.draft.kind), else None."""
    kind = (
        trace_or_kind if isinstance(trace_or_kind, str) else trace_or_kind.get("meta", {}).get("draft", {}).get("kind")
    )
    return FEATURE_DRAFT_WORDS if kind == "feature" else None


# ---------------------------------------------------------------- cached derived data shared by pages


@st.cache_data(max_entries=64, show_spinner=False)
def _gaps(cache_key: str, _trace: Trace) -> list[fg.Gap]:
    return fg.missing_parts(_trace)
