"""Step through (pages/replay.py, URL /replay?trace=NAME&step=N): one step of a trace at a time,
in words and pictures; navigation, the timeline, the cells table, a tree step's tree and mask."""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from specviz import figures as fg
from specviz import figures_tree as ftree
from specviz.figures import KINDS, LABELS, Kind, literal
from specviz.trace import Trace
from specviz.ui.common import TIMELINE_ROWS, _plot, md_escape, tokens_md
from specviz.ui.traces import TraceChoice, _gaps

__all__ = [
    "step_from_selection",
    "step_heading",
    "step_view",
]


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
