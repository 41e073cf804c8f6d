"""The Streamlit layer: the only module that imports streamlit. Pages under pages/ stay thin.

What lives here: the shared sidebar and legend, safe rendering of token text (markdown-escaped,
never HTML), the trace chooser used by replay and statistics (samples, this session's runs,
uploads), the step-through view, the live-decoding runner with its process-wide model cache and
generation lock, and the statistics view.

Session state holds only JSON-able data (traces, settings); models live in st.cache_resource.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from specviz import figures as fg
from specviz import figures_tree as ftree
from specviz import live
from specviz.eventlog import loads_any
from specviz.figures import KINDS, LABELS, SYMBOLS, Kind, literal
from specviz.runsummary import sniff_summary
from specviz.trace import (
    MAX_BYTES,
    Trace,
    TraceError,
    dumps,
    finish,
    loads,
    no_draft_words,
    rate,
    summarize,
    undefined_words,
    validate,
)

if TYPE_CHECKING:  # torch and transformers load only when the live page needs them
    from specviz.models import CausalLM

__all__ = [
    "PRESENTATION_CSS",
    "LiveSettings",
    "TraceChoice",
    "active_runs",
    "choose_trace",
    "home_example",
    "list_samples",
    "live_form",
    "load_sample",
    "md_escape",
    "page_start",
    "read_upload",
    "recover_partial",
    "run_button",
    "run_control",
    "run_live",
    "show_gaps",
    "show_live_result",
    "show_stats",
    "sidebar",
    "step_from_selection",
    "step_view",
    "tokens_md",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = Path(os.environ.get("SPECVIZ_SAMPLES", REPO_ROOT / "assets" / "traces"))
SAMPLE_ORDER = ("sampling-t0.7", "greedy", "threshold", "prompt-lookup", "tree-greedy", "tree-sampling", "long")
SUFFIXES = (".json.gz", ".json", ".jsonl")
# Streamlit's markdown colour names; .streamlit/config.toml sets them to the figures' palette
MD_COLOR: dict[Kind, str] = {
    "accepted": "green",
    "rejected": "red",
    "unevaluated": "gray",
    "correction": "blue",
    "bonus": "violet",
}
SHAPE: dict[str, str] = {"circle": "●", "x": "✕", "circle-open": "○", "diamond": "◆", "star": "★"}
TIMELINE_ROWS = 24
MAX_UPLOADS = 5
MAX_RUNS = 5


# an upload's size; .streamlit/config.toml's server.maxUploadSize caps what reaches the server at all
MAX_UPLOAD_BYTES = min(MAX_BYTES, int(live.env_number("SPECVIZ_MAX_UPLOAD_MB", 50) * 2**20))
MAX_UPLOAD_STEPS = int(live.env_number("SPECVIZ_MAX_UPLOAD_STEPS", 20_000))
_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$=^&")


# ---------------------------------------------------------------- safe text


def md_escape(text: str) -> str:
    """Backslash-escape every markdown-active character, so trace text is shown, never interpreted."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in text)


def tokens_md(tokens: list[tuple[str, Kind]], limit: int | None = None) -> str:
    """Tokens as markdown with their provenance as background colour; whitespace made visible."""
    shown = tokens if limit is None or len(tokens) <= limit else tokens[-limit:]
    parts = ["…" if len(shown) < len(tokens) else ""]
    for text, kind in shown:
        glyphs = fg.visible(text)
        parts.append(f":{MD_COLOR[kind]}-background[{md_escape(glyphs)}]\u200b")
        if "\n" in text:
            parts.append("  \n")  # a visible ⏎ and a real line break
    return "".join(parts)


def legend_md(kinds: tuple[Kind, ...] = KINDS) -> str:
    return " · ".join(f":{MD_COLOR[k]}[{SHAPE[SYMBOLS[k]]} {LABELS[k]}]" for k in kinds)


def _leave_pages_directory_mode() -> None:
    """Route through app.py even when a deep link is the first request a fresh server sees.

    With a pages/ folder next to the entry file, Streamlit runs pages/*.py as an old-style
    multipage app until app.py has called st.navigation once in the process; /replay?… as the
    very first request would land there, without app.py's layout or navigation. The URL paths
    are the same in both modes, so one rerun puts the user on the same page, routed properly.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


# Presentation mode: large type and high contrast for a projector, sidebar hidden. A constant:
# no trace or user text ever goes into it.
PRESENTATION_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stHeader"] { display: none !important; }
.stApp { background: #ffffff !important; color: #000000 !important; }
.stApp [data-testid="stMarkdownContainer"] p, .stApp [data-testid="stMarkdownContainer"] li,
.stApp label, .stApp [data-testid="stCaptionContainer"],
.stApp [data-testid="stMetricLabel"] p { font-size: 1.45rem !important; color: #000000 !important; }
.stApp [data-testid="stMetricValue"] { font-size: 2.8rem !important; color: #000000 !important; }
.stApp h1 { font-size: 3.2rem !important; } .stApp h2, .stApp h3 { font-size: 2.2rem !important; }
.stApp [data-testid="stMainBlockContainer"] { max-width: 100% !important; padding-top: 2.5rem !important; }
.stApp button { border-width: 3px !important; font-size: 1.3rem !important; }
.stApp .katex { font-size: 1.6em !important; }
.stApp [data-testid="stSlider"] [data-testid="stWidgetLabel"] { margin-bottom: 1.3rem !important; }
.stApp [data-testid="stSliderThumbValue"] { font-size: 1.2rem !important; }
.stApp [data-testid="stDataFrame"], .stApp [data-testid="stTable"] { zoom: 1.4; }
</style>"""


# While a live run decodes, the browser should not compete with it for the CPU (an instructor's laptop
# runs both): Streamlit's animated "running" indicator and CSS transitions repaint continuously.
QUIET_CSS = """<style>
[data-testid="stStatusWidget"] { display: none !important; }
.stApp *, .stApp *::before, .stApp *::after { animation: none !important; transition: none !important; }
</style>"""


def _presentation_changed() -> None:
    st.session_state["presentation"] = st.session_state["presentation_widget"]


def page_start(title: str) -> None:
    """Sidebar, title, and the presentation toggle (in the page, since presentation hides the sidebar).

    Presentation carries over between pages in a session, and through ?present=1 in the URL, so a
    reload or a link prepared for the projector opens in it too.
    """
    sidebar()
    if st.query_params.get("present") == "1" and "presentation_widget" not in st.session_state:
        st.session_state["presentation"] = True
    if st.session_state.get("presentation"):
        st.query_params["present"] = "1"
    elif "present" in st.query_params:
        del st.query_params["present"]
    head, toggle = st.columns([5, 1])
    head.title(title)
    toggle.toggle(
        "Presentation",
        value=bool(st.session_state.get("presentation", False)),
        key="presentation_widget",
        on_change=_presentation_changed,
        help="Large type and high contrast for a projector; hides the sidebar. Carries over between pages.",
    )
    if st.session_state.get("presentation"):
        st.html(PRESENTATION_CSS)


def sidebar() -> None:
    """The sidebar every page shares: the legend and the notation. Pages call this first."""
    _leave_pages_directory_mode()
    with st.sidebar:
        st.markdown("**Legend** (the same in every panel)")
        for k in KINDS:
            st.markdown(f":{MD_COLOR[k]}[{SHAPE[SYMBOLS[k]]} {LABELS[k]}]")
        st.caption(
            "**p**: the evaluation (target) model's probability · **q**: the draft's · **γ** (gamma): drafts per "
            "step · **n_accepted**: drafts accepted in a row · **r**: the uniform draw tested against min(1, p/q). "
            "Whitespace in tokens: ␣ space, ⏎ newline, ⇥ tab."
        )


def _plot(fig: go.Figure, key: str, **kw: Any) -> Any:
    if st.session_state.get("presentation"):  # a projector: the charts' text grows with the prose
        fig = fg.presented(fig)
    return st.plotly_chart(fig, key=key, config={"displayModeBar": False}, **kw)


# ---------------------------------------------------------------- traces: samples, runs, uploads


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


def _store() -> dict[str, dict[str, Any]]:
    """This session's own traces (runs and uploads): key → {"trace", "label"}. Plain JSON data."""
    return st.session_state.setdefault("traces", {})


def add_trace(key: str, trace: Trace, label: str, limit: int) -> None:
    store = _store()
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
    if key in _store():
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
    labels |= {k: v["label"] for k, v in _store().items()}
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
        st.query_params["trace"] = key.removeprefix("sample:")
        cache_key = f"{key}@{samples[key.removeprefix('sample:')].stat().st_mtime_ns}"
    else:
        trace = _store()[key]["trace"]
        st.query_params.pop("trace", None)
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


def _meta_line(trace: Trace) -> str:
    m = trace.get("meta", {})
    rule = m.get("rule", {})
    params = ", ".join(f"{k} = {v:g}" for k, v in (rule.get("params") or {}).items() if isinstance(v, (int, float)))
    samp = m.get("sampling", {})
    return md_escape(
        literal(
            f"{m.get('target', {}).get('name', '?')} ← {m.get('draft', {}).get('name', '?')} · γ = {m.get('gamma')} · "
            f"rule {rule.get('name', '?')}{f' ({params})' if params else ''} · T = {samp.get('temperature', '?')} · "
            f"seed {m.get('seed', '?')}",
            300,
        )
    )


# ---------------------------------------------------------------- cached derived data


@st.cache_data(max_entries=256, show_spinner=False)
def _provenance(cache_key: str, _trace: Trace) -> list[tuple[str, Kind, int]]:
    return [(t.token, t.kind, t.step) for t in fg.provenance(_trace)]


@st.cache_data(max_entries=512, show_spinner=False)
def _acceptance(cache_key: str, k: int, _trace: Trace) -> go.Figure:
    return fg.acceptance_figure(_trace, k)


@st.cache_data(max_entries=512, show_spinner=False)
def _distribution(cache_key: str, k: int, position: int, _trace: Trace) -> go.Figure:
    return fg.distribution_figure(_trace, k, position)


@st.cache_data(max_entries=512, show_spinner=False)
def _timeline(cache_key: str, start: int, stop: int, selected: int, _trace: Trace) -> go.Figure:
    return fg.timeline_figure(_trace, start, stop, selected)


@st.cache_data(max_entries=64, show_spinner=False)
def _summary(cache_key: str, _trace: Trace) -> dict[str, Any]:
    return summarize(_trace)


@st.cache_data(max_entries=64, show_spinner=False)
def _gaps(cache_key: str, _trace: Trace) -> list[fg.Gap]:
    return fg.missing_parts(_trace)


# ---------------------------------------------------------------- home


def home_example() -> tuple[Trace, int, str | None]:
    """A real step to draw on the home page: a correction after at least one accepted draft if possible."""
    for name in list_samples():
        trace = load_sample(name)
        if isinstance(trace, str) or not trace["steps"]:
            continue
        steps = trace["steps"]
        good = [
            s["index"]
            for s in steps
            if s.get("next") and s["next"]["kind"] == "correction" and s["n_accepted"] >= 1 and len(s["draft"]) >= 3
        ]
        return trace, (good[0] if good else 0), name
    return fg.toy_trace(), 0, None


# ---------------------------------------------------------------- replay


def step_from_selection(points: list[dict[str, Any]]) -> int | None:
    """The step a click on the timeline picked (its y value), or None."""
    for pt in points:
        y = pt.get("y", pt.get("customdata"))
        if isinstance(y, list):
            y = y[0] if y else None
        if isinstance(y, (int, float)) and not isinstance(y, bool):
            return round(y)
    return None


def _set_step(k: int) -> None:
    st.session_state["replay_pos"] = k


def _on_timeline(n_steps: int) -> None:
    event = st.session_state.get("replay_timeline") or {}
    k = step_from_selection((event.get("selection") or {}).get("points") or [])
    if k is not None and 0 <= k < n_steps:
        _set_step(k)


def _sync_from_slider() -> None:
    _set_step(int(st.session_state["replay_slider"]))


def current_step(choice: TraceChoice) -> int:
    """The replay position for this trace: from ?step=N on arrival, kept in session state after."""
    state, n = st.session_state, len(choice.trace["steps"])
    if state.get("replay_for") != choice.key:
        state["replay_for"] = choice.key
        state["replay_pos"] = 0
        state["replay_playing"] = False
    wanted = st.query_params.get("step")
    if wanted is not None and wanted.strip().isdigit() and state.get("replay_url_step") != (choice.key, wanted):
        state["replay_url_step"] = (choice.key, wanted)  # apply a link's step once, then let the user move
        state["replay_pos"] = int(wanted)
    state["replay_pos"] = max(0, min(int(state.get("replay_pos", 0)), n - 1))
    return state["replay_pos"]


def _advance(n: int) -> None:
    """One tick of play: next step, or stop at the end."""
    state = st.session_state
    now = time.monotonic()
    interval = 1.0 / float(state.get("replay_speed", 1.0))
    if now - state.get("replay_tick", 0.0) < 0.8 * interval:
        return  # this rerun came from a click, not from the clock
    state["replay_tick"] = now
    if state["replay_pos"] < n - 1:
        state["replay_pos"] += 1
    else:
        state["replay_playing"] = False
        st.rerun(scope="app")


def step_heading(k: int, n: int) -> str:
    """ "Step 3 of 34 (numbered from 0)": the count as the timeline says it, the index as the trace has it."""
    return f"Step {k} of {n} (numbered from 0)"


def step_view(choice: TraceChoice) -> None:
    """Everything about the current step. Runs as a fragment: stepping reruns only this."""
    trace, state = choice.trace, st.session_state
    n = len(trace["steps"])
    k = current_step(choice)
    if state.get("replay_playing"):
        _advance(n)
        k = state["replay_pos"]
    nav = st.columns([3, 3, 3, 3, 7])  # room for each label and its keyboard-shortcut hint ("First  Home")
    for col, (label, icon, to, off, key) in zip(
        nav,
        (
            ("First", "first_page", 0, k == 0, "Home"),
            ("Prev", "chevron_left", max(0, k - 1), k == 0, "Left"),
            ("Next", "chevron_right", min(n - 1, k + 1), k >= n - 1, "Right"),
            ("Last", "last_page", n - 1, k >= n - 1, "End"),
        ),
        strict=False,
    ):
        # arrow keys step through the trace: an instructor at a projector need not aim for buttons
        col.button(
            label,
            icon=f":material/{icon}:",
            on_click=_set_step,
            args=(to,),
            disabled=off,
            width="stretch",
            shortcut=key,
        )
    if n > 1:
        state["replay_slider"] = k
        with nav[4]:
            st.slider("Step", 0, n - 1, key="replay_slider", on_change=_sync_from_slider, label_visibility="collapsed")
    st.query_params["step"] = str(k)
    state["replay_url_step"] = (choice.key, str(k))  # our own write: not a new link to follow
    step = trace["steps"][k]
    st.subheader(step_heading(k, n))
    if st.session_state.get("presentation"):  # a projector: words, then full-width charts, each readable
        left, right = st.container(), st.container()
    else:
        left, right = st.columns([5, 6], gap="large")
    with left:
        _step_words(choice, k)
    with right:
        g = len(step["draft"])
        positions = list(range(g + 1)) if step["n_accepted"] == g else list(range(g))
        if state.get("replay_dist_for") != (choice.key, k) or state.get("replay_dist_pos") not in positions:
            state["replay_dist_for"] = (choice.key, k)
            state["replay_dist_pos"] = min(step["n_accepted"], positions[-1])
        gaps = {gap.key for gap in _gaps(choice.cache_key, trace) if gap.missing >= gap.of}
        st.markdown("**Acceptance diagram**: p and q of each draft, the rule's test, the first rejection")
        if {"p", "q"} <= gaps:
            st.caption("No p or q in this trace, so no acceptance diagram: the decisions are in the table.")
        else:
            _plot(_acceptance(choice.cache_key, k, trace), "replay_accept")
        st.markdown("**Distributions**: top tokens of p, q and the residual; the chosen token is marked")
        if "top" in gaps:
            st.caption("No top-k lists in this trace, so no distributions panel.")
        else:
            pos = st.radio(
                "Distributions at",
                positions or [0],
                key="replay_dist_pos",
                horizontal=True,
                format_func=lambda j: f"position {j + 1}" if j < g else "bonus position",
                help="Starts where the evaluation model's own token is drawn: position n_accepted + 1.",
            )
            _plot(_distribution(choice.cache_key, k, int(pos), trace), "replay_dist")
            untempered = (
                " Outlined bars are each model's own distribution before temperature, top-k and top-p: at "
                "temperature 0 the filled bars are all-or-nothing, and the outlines show how sure each model was."
                if _has_raw(step)
                else ""
            )
            st.caption(
                "The residual is rebuilt from the logged top lists only, so it is approximate where p or q has mass "
                "outside them." + untempered
            )
    if step.get("tree"):
        _tree_section(choice, k, trace)
    st.markdown("**Token timeline** — click a marker to jump to its step")
    start, stop = fg.window(n, k, TIMELINE_ROWS)
    _plot(
        _timeline(choice.cache_key, start, stop, k, trace),
        "replay_timeline",
        on_select=lambda: _on_timeline(n),
        selection_mode="points",
    )
    if stop - start < n:
        st.caption(f"Showing steps {start}–{stop - 1} of {n}; the window follows the current step.")


@st.cache_data(max_entries=256, show_spinner=False)
def _tree_figures(cache_key: str, k: int, _trace: Trace) -> tuple[go.Figure, go.Figure]:
    return ftree.tree_figure(_trace, k), ftree.tree_mask_figure(_trace, k)


def _tree_section(choice: TraceChoice, k: int, trace: Trace) -> None:
    """A tree step: the tree with its accepted path, and the attention mask its verification pass used."""
    st.markdown(
        "**Draft tree**: every candidate the draft proposed, scored in one pass of the evaluation model; "
        "the accepted path is drawn thick. The acceptance diagram above shows its main line."
    )
    tree_fig, mask_fig = _tree_figures(choice.cache_key, k, trace)
    if st.session_state.get("presentation"):
        left, right = st.container(), st.container()
    else:
        left, right = st.columns([3, 2], gap="large")
    with left:
        _plot(tree_fig, "replay_tree")
        st.caption(md_escape(ftree.tree_words(trace, k)))
    with right:
        st.markdown("**Tree attention mask**: which position each node may attend to (dark = sees)")
        _plot(mask_fig, "replay_tree_mask")


def _step_words(choice: TraceChoice, k: int) -> None:
    trace = choice.trace
    step = trace["steps"][k]
    prompt = trace.get("prompt", {})
    before = [(t, kind) for t, kind, s in _provenance(choice.cache_key, trace) if s < k]
    if "context_length" in step and "token_ids" in prompt:
        st.markdown(
            f"**1 · Context so far**: i = {step['context_length']} tokens — the prompt ({len(prompt['token_ids'])} "
            f"tokens{', with the chat template' if trace.get('meta', {}).get('chat') else ''}) and {len(before)} "
            "generated."
        )
    else:
        st.markdown(f"**1 · Context so far**: the prompt (not in this trace) and {len(before)} generated tokens.")
    if prompt.get("text"):
        st.text(literal(prompt["text"], 400))
    if before:
        st.markdown(tokens_md(before, limit=60))
    st.markdown("**2–5 · Drafts, q, p, the rule's test, the decision**")
    for line in fg.describe_step(trace, k):
        st.markdown("- " + md_escape(line))
    cells = [c for c in fg.step_cells(trace, k) if not c.from_model]
    if cells:
        st.dataframe(
            _cells_table(cells),
            hide_index=True,
            width="stretch",
            column_config={"the rule's test": st.column_config.TextColumn(width="large")},  # never "r = 0.307 ‹ …"
        )
    st.markdown("**6 · n_accepted and the post-acceptance token**")
    st.info(md_escape(fg.describe_next(trace, k)))


_TINT: dict[Kind, str] = {
    "accepted": "#CDEEE4",
    "rejected": "#F7DCCC",
    "unevaluated": "#EEEEEE",
    "correction": "#CCE3F0",
    "bonus": "#F5E4EE",
}


RAW_COLUMNS = {"q(x) untempered": "q_raw", "p(x) untempered": "p_raw"}  # shown where the trace logs them


def _has_raw(step: dict[str, Any]) -> bool:
    """Whether the step logs the models' untempered distributions (a trace recorded with warping)."""
    nxt = step.get("next") or {}
    return any("top_raw" in e for e in (*step["draft"], *step["verify"], nxt))


def _cells_table(cells: list[fg.Cell]) -> Any:
    columns: dict[str, list[Any]] = {
        "pos": [c.position + 1 for c in cells],
        "draft token": [fg.visible(c.token) for c in cells],
        "q(x)": [c.q for c in cells],
        "p(x)": [c.p for c in cells],
    }
    for name, attr in RAW_COLUMNS.items():  # the models' own probabilities, before temperature / top-k / top-p
        if any(getattr(c, attr) is not None for c in cells):
            columns[name] = [getattr(c, attr) for c in cells]
    columns["outcome"] = [LABELS[c.kind] for c in cells]
    columns["the rule's test"] = [c.test for c in cells]
    df = pd.DataFrame(columns)
    tint = {LABELS[k]: _TINT[k] for k in KINDS}
    numbers = {name: "{:.3f}" for name in ("q(x)", "p(x)", *RAW_COLUMNS) if name in columns}
    return df.style.format(numbers, na_rep="—").map(
        lambda v: f"background-color: {tint.get(v, '')}" if v in tint else "", subset=["outcome"]
    )


# ---------------------------------------------------------------- live decoding

DEFAULT = live.DEFAULT  # specviz.models.DEFAULT: the embedded pair
RULES = ("sampling", "greedy", "threshold", "typical")  # specviz.rules.RULES
CUSTOM = "custom (hub id or local path)"
NGRAM = "prompt lookup (n-gram, no draft model)"
DRAFT_MODEL = "the pair's draft"
LiveSettings = live.LiveSettings  # the page's settings: defined below the UI, where bench can use them too


def _is_feature_draft(draft: str, target: str) -> bool:
    from specviz.models import FEATURE, resolve_draft

    return resolve_draft(draft, target) == FEATURE


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


def live_form() -> LiveSettings:
    """The live page's controls; returns what they say."""
    from specviz.models import PRESETS

    d = LiveSettings()
    # the preset names a whole pair ("SmolLM2-135M-Instruct ← feature draft, reads …"): full width, never cut off
    preset = st.selectbox("Model pair", [*PRESETS, CUSTOM], key="live_preset")
    models, prompt, decoding = st.columns([4, 5, 4], gap="large")
    with models:
        st.markdown("**Models**")
        if preset == CUSTOM:
            target = st.text_input(
                "Evaluation (target) model", DEFAULT, key="live_target", help="hub id, directory, .gguf or 'default'"
            )
            draft = st.text_input(
                "Draft model",
                DEFAULT,
                key="live_draft",
                help="hub id, directory, .gguf, 'default', 'feature', 'standalone' or 'ngram'",
            )
        else:
            target, draft = PRESETS[preset]
        ready = live.default_draft_ready(draft, target)
        kind = st.radio("Drafter", [DRAFT_MODEL, NGRAM], index=0 if ready else 1, key="live_drafter", horizontal=False)
        if not ready and kind == DRAFT_MODEL:
            st.warning("This embedded draft is not installed (assets/); choose prompt lookup or another preset.")
        elif not ready:
            st.caption("This embedded draft is not installed (assets/), so prompt lookup is preselected.")
        if kind == NGRAM:
            draft = "ngram"
        elif _is_feature_draft(draft, target):
            st.caption(FEATURE_DRAFT_WORDS)
    with prompt:
        st.markdown("**Prompt**")
        text = st.text_area("Prompt", d.prompt, key="live_prompt", height=120, label_visibility="collapsed")
        chat = st.radio("Format", ["chat template", "raw text"], key="live_chat", horizontal=True) == "chat template"
        compare = st.checkbox(
            "Also run the evaluation model alone",
            d.compare,
            key="live_compare",
            help="Target-only decoding with the same settings and seed: its output and speed beside the result.",
        )
    with decoding:
        st.markdown("**Decoding**")
        gamma = st.slider("γ (drafts per step)", 1, 16, d.gamma, key="live_gamma")
        c1, c2 = st.container(), st.container()  # one per row: a half column cuts "Adapt γ each step"
        adaptive = c1.checkbox(
            "Adapt γ each step",
            d.adaptive,
            key="live_adaptive",
            help="Start at 4 drafts; +2 after a step that accepted them all, −1 otherwise; γ above is the most "
            "(the schedule of transformers' assisted generation).",
        )
        confidence = c2.number_input(
            "Stop drafting below q",
            0.0,
            1.0,
            d.confidence,
            0.05,
            key="live_confidence",
            help="The draft model stops early after a token it gave less than this probability (0 = off). "
            "Prompt lookup ignores it.",
        )
        tree = st.selectbox(
            "Draft shape",
            TREE_CHOICES,
            index=TREE_CHOICES.index(d.tree) if d.tree in TREE_CHOICES else 0,
            key="live_tree",
            format_func=tree_choice_words,
            help="A chain drafts γ tokens in a row. A tree drafts several candidates per depth, all checked in one "
            "pass of the evaluation model; 'sized to this machine' measures what that pass costs here first.",
        )
        rule = st.selectbox(
            "Acceptance rule",
            RULES,
            key="live_rule",
            help="sampling and greedy are lossless; threshold and typical are lossy",
        )
        tau, epsilon, delta = d.tau, d.epsilon, d.delta
        if rule == "threshold":
            tau = st.number_input("τ: accept when p/q ≥ τ", 0.0, 10.0, d.tau, 0.05, key="live_tau")
        if rule == "typical":
            c1, c2 = st.columns(2)
            epsilon = c1.number_input("ε", 0.0, 1.0, d.epsilon, 0.01, key="live_epsilon")
            delta = c2.number_input("δ", 0.0, 1.0, d.delta, 0.05, key="live_delta")
        temperature = st.slider("Temperature (0 = greedy)", 0.0, 2.0, d.temperature, 0.05, key="live_temperature")
        c1, c2 = st.columns(2)
        top_k = c1.number_input("top-k (0 = off)", 0, 100_000, d.top_k, key="live_top_k")
        top_p = c2.number_input("top-p (1 = off)", 0.01, 1.0, d.top_p, 0.05, key="live_top_p")
        c1, c2 = st.columns(2)
        seed = c1.number_input("Seed", 0, 2**31 - 1, d.seed, key="live_seed")
        max_new = c2.number_input("Max new tokens", 1, 2048, d.max_new_tokens, key="live_max_new")
    return LiveSettings(
        target=target.strip(),
        draft=draft.strip(),
        prompt=text,
        chat=chat,
        gamma=int(gamma),
        rule=str(rule),
        tau=float(tau),
        epsilon=float(epsilon),
        delta=float(delta),
        temperature=float(temperature),
        top_k=int(top_k),
        top_p=float(top_p),
        seed=int(seed),
        max_new_tokens=int(max_new),
        compare=compare,
        adaptive=bool(adaptive),
        confidence=float(confidence),
        tree=str(tree),
    )


def _session_alive(session_id: str | None) -> bool:
    """False once the browser tab of this session is gone (closed, navigated away, disconnected)."""
    if session_id is None:
        return True
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return True
    try:
        return bool(Runtime.instance().is_active_session(session_id))
    except Exception:  # a runtime without sessions (tests): assume the session is there
        return True


def run_control() -> live.RunControl:
    """A RunControl for this session: its tab's liveness, and the time limit from now."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    sid = ctx.session_id if ctx is not None else None
    limit = live.MAX_RUN_SECONDS
    return live.RunControl(lambda: _session_alive(sid), time.monotonic() + limit, limit)


_ACTIVE_RUNS: dict[int, live.RunControl] = {}  # the runs in progress in this process (at most one: the lock)
POLL_SECONDS = 1.0  # how often the page redraws a run's progress: text only, never a chart while it decodes
SETTLE_SECONDS = 1.0  # the browser redraws the page after Run; timing starts once it has (live.LiveRun)
TEXT_EVERY = 3  # polls between redraws of the growing text (docs/BENCHMARKS.md: what drawing costs here)


def active_runs() -> int:
    return len(_ACTIVE_RUNS)


def _request(flag: str, value: Any = True) -> None:
    """Button callbacks only raise a flag: the flag, unlike a button's return value, survives a rerun."""
    st.session_state[flag] = value


def run_button() -> bool:
    """The Run button; True once after it was pressed."""
    st.button("Run", icon=":material/play_arrow:", type="primary", key="live_run", on_click=_request, args=("live_go",))
    return bool(st.session_state.pop("live_go", False))


@contextmanager
def _generation_slot(note: Any) -> Iterator[None]:
    """Hold the process-wide generation lock, telling the user while another session has it.

    Any Streamlit call may raise the rerun of a Stop click (or the stop of a closed tab), so the
    lock is released in every case.
    """
    acquired = live.GENERATION_LOCK.acquire(blocking=False)
    try:
        while not acquired:
            note.info("Another session is generating with the shared model; this run starts when it is done…")
            acquired = live.GENERATION_LOCK.acquire(timeout=0.5)
        note.empty()
        yield
    finally:
        if acquired:
            live.GENERATION_LOCK.release()


def _explain(exc: BaseException, s: LiveSettings) -> str:
    return literal(live.explain(exc, s), 800)


TREE_CHOICES = ["chain", "auto", "2,2,1,1", "3,2,1,1,1", "dynamic:16:6:4"]


def tree_choice_words(text: str) -> str:
    """A tree choice in words: 'chain of γ drafts', 'tree 2·2·1·1 (14 nodes)', ..."""
    from specviz.tree import TreeShape

    shape = TreeShape.parse(text)
    if shape.kind == "chain":
        return "chain of γ drafts"
    if shape.kind == "auto":
        return "tree sized to this machine"
    if shape.kind == "static":
        return f"tree {'·'.join(map(str, shape.branching))} ({shape.size} nodes)"
    return f"dynamic tree, {shape.nodes} nodes (EAGLE-2)"


def run_live(s: LiveSettings) -> None:
    """Start a live run in the decode worker and follow it; the finished (or stopped) run goes to
    session state as live_result."""
    from specviz.record import Recording, make_drafter

    try:
        cfg = s.config()
    except ValueError as exc:
        st.error(f"Check the settings: {md_escape(literal(str(exc)))}.")
        return
    if not s.prompt.strip():
        st.error("The prompt is empty: write something for the model to continue.")
        return
    if not s.target or not s.draft:
        st.error("Name both models (a hub id, a local directory, a .gguf file, or 'default').")
        return
    st.button(
        "Stop",
        icon=":material/stop:",
        key="live_stop",
        help="Stops after the current step and keeps the partial trace.",
    )
    st.html(QUIET_CSS)  # constant CSS like PRESENTATION_CSS, no trace or user text: the browser stays idle
    note, progress = st.empty(), st.progress(0.0, text="waiting for the model…")
    text_slot = st.empty()
    control = run_control()
    with _generation_slot(note):  # loading takes the slot too: one pair in use at a time keeps memory bounded
        names = md_escape(literal(f"{s.target} ← {s.draft}", 200))
        try:
            with st.spinner(f"Loading {names} (once per server process; the first time takes a while)…"):
                target, draft = live.load_models(s.target, s.draft)
            if s.tree == "auto":
                with st.spinner("Sizing the draft tree to this machine (once per pair; about half a minute)…"):
                    cfg, tree_meta = live.sized_config(s, target, make_drafter(target, draft))
            else:
                tree_meta = {}
            rec = Recording(
                target,
                make_drafter(target, draft),
                s.prompt,
                cfg,
                chat=s.chat,
                should_stop=control.should_stop,
                extra_meta=tree_meta,
            )
            prompt_note = long_prompt_note(len(rec.prompt_ids), target)
            if prompt_note:
                st.warning(prompt_note)
        except Exception as exc:  # the UI boundary: a model that cannot load, no hub, OOM, a tokenizer mismatch
            live.free_memory()
            st.error(f"Could not load the models: {md_escape(_explain(exc, s))}")
            return
        run = live.LiveRun(rec, cfg, control, baseline=s.compare, settle_s=SETTLE_SECONDS)
        partial: dict[str, Any] = {
            "trace": rec.trace,
            "settings": asdict(s),
            "seconds": 0.0,
            "baseline": None,
            "prompt_note": prompt_note,
        }
        st.session_state["live_partial"] = partial
        _ACTIVE_RUNS[id(control)] = control
        try:
            run.start()
            _follow(run, progress, text_slot)
        finally:  # a Stop click or a closed tab lands here as an exception: stop the worker, wait one step
            if not run.done.is_set():
                control.stop.set()
            run.join()
            _ACTIVE_RUNS.pop(id(control), None)
            _collect(run, partial)
    st.session_state.pop("live_partial", None)
    if run.error is not None:
        partial["error"] = _explain(run.error, s)
        if live.is_oom(run.error):
            live.free_memory()
    if control.reason is not None and control.reason != "stop requested":
        partial["stop_note"] = control.reason
    _keep_result(partial, stopped=control.reason is not None)
    st.rerun()


def _collect(run: live.LiveRun, partial: dict[str, Any]) -> None:
    """What the result shows: the worker's timings (also in the trace's meta.timing) and the baseline."""
    timing = run.trace["meta"].get("timing") or run.timing()
    partial["seconds"] = timing["wall_ms"] / 1e3
    partial["timing"] = timing
    if run.baseline is not None:
        b = run.baseline
        partial["baseline"] = {"text": b["text"], "tokens": b["tokens"], "seconds": b["seconds"]}


def _follow(run: live.LiveRun, progress: Any, text_slot: Any) -> None:
    """Redraw the run's progress every POLL_SECONDS until the worker is done: a progress bar and the
    growing text, the same way while the evaluation model runs alone (its own text then), so the
    browser does the same work while either is timed."""
    polls = 0
    while not run.done.wait(POLL_SECONDS):
        p, polls = run.progress(), polls + 1
        text = polls % TEXT_EVERY == 0  # the text less often: every browser redraw takes CPU from the models
        if p.phase == "baseline":
            n = p.baseline_tokens
            progress.progress(n / p.max_new_tokens, text=f"evaluation model alone: {fg.plural(n, 'token')}")
            if text:
                ids = list(run.baseline_ids)
                toks = [(run.recording.target.token_text(i), "unevaluated") for i in ids]
                text_slot.markdown(tokens_md(toks, limit=200))  # type: ignore[arg-type]
        else:
            progress.progress(p.tokens / p.max_new_tokens, text=f"step {p.steps} · {fg.plural(p.tokens, 'token')}")
            if text:
                text_slot.markdown(tokens_md([(t.token, t.kind) for t in fg.provenance(run.trace)], limit=200))


def long_prompt_note(n_tokens: int, target: CausalLM) -> str | None:
    """Words for a prompt long enough to slow every step, or longer than the model can read (else None)."""
    limit = getattr(target.model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and n_tokens >= limit:
        return (
            f"The prompt is {n_tokens:,} tokens, and this evaluation model reads at most {limit:,}: its output past "
            "that point is not meaningful. Shorten the prompt."
        )
    if n_tokens > 2000:
        return (
            f"The prompt is {n_tokens:,} tokens: every step attends over all of them, so decoding is slower than with "
            "a short prompt (on a laptop CPU, a few tokens per second)."
        )
    return None


def _keep_result(partial: dict[str, Any], stopped: bool) -> None:
    trace = partial["trace"]
    if "output" not in trace:
        finish(trace, "stopped")
    run_id = uuid.uuid4().hex[:8]
    runs = st.session_state.setdefault("run_count", 0) + 1
    st.session_state["run_count"] = runs
    m = trace["meta"]
    label = f"Your run {runs} · {literal(m['draft']['name'], 60)}, γ = {m['gamma']}, {m['rule']['name']}"
    add_trace(f"run:{run_id}", trace, label, MAX_RUNS)
    st.session_state["live_result"] = {"key": f"run:{run_id}", "number": runs, **partial, "stopped": stopped}


def recover_partial() -> None:
    """A run interrupted by Stop (or by leaving the page) left its partial trace: keep it as the result."""
    partial = st.session_state.pop("live_partial", None)
    if partial is not None:
        _keep_result(partial, stopped=True)


def _timed_words(speed: float | None, tokens: int, model_ms: float | None, baseline: bool) -> str:
    """What the speeds on the Live page measure, in words (they are never the page's own time)."""
    model = (
        f" Model time alone (the decoder's draft + verify timings) gives {tokens / (model_ms / 1e3):.1f} tok/s."
        if model_ms
        else ""
    )
    how = (
        "What was timed: each decode loop in the server's worker thread, from its first step to its last (wall "
        f"time), while this page redrew its progress every second and the text every {POLL_SECONDS * TEXT_EVERY:.0f} seconds; drawing, sending to the browser and the browser "
        f"itself are not in it.{model}"
    )
    if baseline:
        return how + " Both runs used the same models, dtype, settings and seed, one right after the other."
    return how + " Tick **Also run the evaluation model alone** to measure the speedup on this machine."


def show_live_result(result: dict[str, Any]) -> None:
    trace: Trace = result["trace"]
    store = _store()
    if result["key"] not in store:
        store[result["key"]] = {"trace": trace, "label": "Your last run"}
    n, out = len(trace["steps"]), trace["output"]
    st.subheader(f"Result of run {result['number']}" if result.get("number") else "Result")
    if result.get("error"):
        st.error(f"Decoding stopped with an error; the steps before it are kept. {md_escape(result['error'])}")
    if result.get("prompt_note"):
        st.warning(result["prompt_note"])  # our own words and numbers only
    if result.get("stopped"):
        why = f" ({md_escape(result['stop_note'])})" if result.get("stop_note") else ""
        st.warning(f"Stopped after {n} step{'s' if n != 1 else ''}{why}; the partial trace is kept below.")
    if n == 0:
        return
    s = summarize(trace)
    tokens = len(out["token_ids"])
    speed = tokens / result["seconds"] if result.get("seconds") else None
    model_ms = (result.get("timing") or {}).get("model_ms")
    cols = st.columns(5)
    cols[0].metric("tokens", tokens)
    cols[1].metric("steps (evaluation passes)", n)
    cols[2].metric("tokens per step", f"{s['tokens_per_step']:.2f}")
    cols[3].metric("α (acceptance)", rate(s["alpha"]), help=undefined_words(s) or None)
    cols[4].metric(
        "speculative speed",
        f"{speed:.1f} tok/s" if speed else "—",
        help="tokens ÷ the wall time of the decode loop in the server's worker thread (the page's drawing is not in it)",
    )
    st.markdown(legend_md(("accepted", "correction", "bonus")))
    st.markdown(tokens_md([(t.token, t.kind) for t in fg.provenance(trace)]))
    base = result.get("baseline")
    if base:
        bspeed = base["tokens"] / base["seconds"] if base["seconds"] else 0.0
        left, right = st.columns(2)
        with left:
            st.markdown(f"**Speculative output** · {speed or 0:.1f} tok/s")
            st.text(literal(fg.readable_output(out["text"], trace)))
        with right:
            st.markdown(f"**Evaluation model alone** · {bspeed:.1f} tok/s")
            st.text(literal(fg.readable_output(base["text"], trace)))
        same = "identical" if base["text"] == out["text"] else "different"
        ratio = f"{speed / bspeed:.2f}×" if speed and bspeed else "—"
        st.caption(
            f"Measured speedup {ratio}. The two outputs are {same}: with a lossless rule they follow the same "
            "distribution, and with temperature 0 they are the same text; lossy rules may drift."
        )
    else:
        with st.expander("Output as plain text"):
            st.text(literal(fg.readable_output(out["text"], trace)))
    st.caption(_timed_words(speed, tokens, model_ms, bool(base)))
    steps = len(trace["steps"])
    _plot(fg.timeline_figure(trace, max(0, steps - TIMELINE_ROWS), steps), "live_result_timeline")
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download the trace (JSON)",
        dumps(trace),
        file_name=f"specviz-trace-{result['key'].removeprefix('run:')}.json",
        mime="application/json",
        key="live_download",
        icon=":material/download:",
    )
    c2.button(
        "Step through this run",
        icon=":material/manage_search:",
        key="live_to_replay",
        on_click=_request,
        args=("live_goto_replay", result["key"]),
    )
    key = st.session_state.pop("live_goto_replay", None)
    if key is not None:
        st.session_state["trace_key"] = key
        st.query_params.clear()
        st.switch_page("pages/replay.py")


# ---------------------------------------------------------------- statistics


def show_stats(choice: TraceChoice) -> None:
    trace = choice.trace
    if not trace["steps"]:
        st.info("This trace has no steps.")
        return
    s = _summary(choice.cache_key, trace)
    k = fg.costs(trace, s)
    st.markdown(_meta_line(trace))
    if words := draft_words(trace):
        st.caption(words)
    if words := ftree.tree_stats_words(trace):
        st.caption(md_escape(words))
    cols = [*st.columns(4), *st.columns(4)]  # two rows: seven labels in one row are cut off at 1440 px
    cols[0].metric("steps", k.steps)
    cols[1].metric("tokens", s["tokens"])
    cols[2].metric(
        "α",
        rate(k.alpha),
        help="accepted / (accepted + rejections): the per-decision acceptance"
        + (f". n/a: {undefined_words(s)}" if k.alpha is None else ""),
    )
    cols[3].metric(
        "tokens / step",
        f"{k.tokens_per_step:.2f}",
        f"theory {rate(k.expected_tokens_per_step)}",
        delta_color="off",
        delta_arrow="off",
    )
    cols[4].metric(
        "cost ratio c", "—" if k.c is None else f"{k.c:.3f}", help="draft time per draft token ÷ verify time per step"
    )
    cols[5].metric(
        "ideal speedup",
        "—" if k.speedup is None else f"{k.speedup:.2f}×",
        help="By the formula below, with verification costing exactly one pass of the evaluation model alone: an "
        "upper bound, not a measurement.",
    )
    cols[6].metric(
        "measured speedup",
        "—" if k.measured_speedup is None else f"{k.measured_speedup:.2f}×",
        help="This run's tokens/s ÷ the evaluation model alone's, timed the same way right after it"
        if k.measured_speedup is not None
        else "Not measured: this trace has no target-alone timing. Record it on the Live page with 'Also run the "
        "evaluation model alone'.",
    )
    theory, speedup = st.columns(2)
    theory.latex(r"\text{tokens per step} = \frac{1-\alpha^{\gamma+1}}{1-\alpha}")
    speedup.latex(r"\text{speedup} = \frac{1-\alpha^{\gamma+1}}{(1-\alpha)(\gamma c+1)}")
    st.markdown("**Verdict**")
    for line in fg.verdict(k):
        st.info(md_escape(line))
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Acceptance per draft position**")
        _plot(fg.per_position_figure(s), "stats_positions")
        st.markdown("**Tokens per step against the theory**")
        _plot(fg.tokens_per_step_figure(k), "stats_theory")
    with right:
        st.markdown("**How many drafts each step accepted**")
        _plot(fg.accepted_lengths_figure(s, k.gamma), "stats_lengths")
        if s["steps_without_draft"]:
            st.caption(
                md_escape(
                    f"{s['steps_without_draft']} of {s['steps']} steps drafted nothing ({no_draft_words(s)}) and "
                    "are left out: the evaluation model wrote their token alone."
                )
            )
        st.markdown("**Draft vs verify time per step**")
        if any(s.get("timing_ms") for s in trace["steps"]):
            _plot(fg.timing_figure(trace), "stats_timing")
        else:
            st.info("No step timings in this trace, so no cost analysis: c and the ideal speedup need them.")
    if k.draft_ms_per_token is not None and k.verify_ms_per_step is not None:
        st.caption(
            f"Measured: {k.draft_ms_per_token:.2f} ms per draft token, {k.verify_ms_per_step:.1f} ms per verification "
            f"pass, so c = {k.c:.3f}. Times come from the machine that recorded the trace."
            + (
                f" The evaluation model alone took {k.target_ms_per_token:.1f} ms per token, so one verification pass "
                f"cost {k.verify_passes:.2f} of its tokens (the ideal assumes 1.0); with these measured costs the "
                f"formula predicts {k.predicted_speedup:.2f}×."
                if k.target_ms_per_token and k.verify_passes and k.predicted_speedup
                else " The ideal speedup assumes a verification pass costs one token of the evaluation model alone; "
                "no target-alone timing was recorded to check that."
            )
        )
