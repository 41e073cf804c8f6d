"""Step through (pages/replay.py, URL /replay?trace=NAME&step=N): one step of a trace at a time,
in words and pictures, played in the browser.

The step view itself is the browser player (specviz/ui/player.py, data from specviz/teach/player.py):
stepping, the slider, play, the distribution positions and a click on the timeline never rerun
this script. This page picks the trace, mounts the player at the linked step, and offers the
lesson file (specviz/teach/lesson.py) that plays the same trace with no server at all.
"""

from __future__ import annotations

import re

import streamlit as st

from specviz.figures import literal
from specviz.teach import lesson
from specviz.teach.player import meta_line
from specviz.trace import Trace
from specviz.ui.player import show_player
from specviz.ui.traces import TraceChoice, choose_trace

__all__ = ["lesson_name", "linked_step", "replay_view"]


def linked_step(n_steps: int) -> int:
    """The step a link asks for (?step=N), clamped to the trace; 0 without one."""
    wanted = (st.query_params.get("step") or "").strip()
    if not (wanted.isascii() and wanted.isdigit()) or len(wanted) > 9:  # not "²", not 5,000 digits
        return 0
    return max(0, min(int(wanted), n_steps - 1))


def lesson_name(choice: TraceChoice) -> str:
    """A safe file name for the trace's lesson file: letters, digits, dots, dashes."""
    stem = re.sub(r"[^A-Za-z0-9.-]+", "-", choice.sample or choice.label).strip(".-")[:60] or "trace"
    return f"specviz-{stem}.html"


@st.cache_data(max_entries=4, show_spinner=False)  # ~6 MB each; a class downloads the same few
def _lesson_bytes(cache_key: str, name: str, _trace: Trace) -> bytes:
    return lesson.lesson_html([(name, _trace)]).encode("utf-8")


def _lesson_section(choice: TraceChoice) -> None:
    steps = len(choice.trace["steps"])
    # one of these is ~5 MB of Plotly.js plus ~3 kB per step, built only when the button is pressed
    size_mb = 4.8 + 3.4e-3 * steps
    st.download_button(
        "Download a lesson file",
        data=lambda: _lesson_bytes(choice.cache_key, literal(choice.label, 120), choice.trace),
        file_name=lesson_name(choice),
        mime="text/html",
        icon=":material/download:",
        on_click="ignore",
        help=f"One HTML file (about {size_mb:.0f} MB) that plays this trace in any browser with no server and no "
        "network: open it from disk, mail it, or put it on any static web host. "
        "`python -m specviz export TRACE -o lesson.html` writes the same from the command line.",
    )


def replay_view() -> None:
    """The page below its title: the trace picker, the player at the linked step, the lesson file."""
    choice = choose_trace("replay")
    if choice is None:
        return
    trace = choice.trace
    if not trace["steps"]:
        st.info("This trace has no steps to show.")
        return
    show_player(
        choice.cache_key,
        literal(choice.label, 120),
        trace,
        meta_line(trace),
        linked_step(len(trace["steps"])),
        bool(st.session_state.get("presentation")),
    )
    _lesson_section(choice)
