"""Step-through: one step of a trace at a time, in words and pictures; ?trace=NAME&step=N links here."""

import streamlit as st

from specviz.ui import common, replay, traces


def replay_page() -> None:
    common.page_start("Step through a trace")
    choice = traces.choose_trace("replay")
    if choice is None:
        return
    if not choice.trace["steps"]:
        st.info("This trace has no steps to show.")
        return
    state = st.session_state
    play, speed, _ = st.columns([1, 2, 5])

    def toggle() -> None:
        state["replay_playing"] = not state.get("replay_playing", False)
        state["replay_tick"] = 0.0

    playing = bool(state.get("replay_playing")) and state.get("replay_for") == choice.key
    play.button(
        "Pause" if playing else "Play",
        icon=":material/pause:" if playing else ":material/play_arrow:",
        key="replay_play",
        on_click=toggle,
        width="stretch",
    )
    speed.select_slider(
        "Speed (steps per second)",
        options=[0.25, 0.5, 1.0, 2.0, 4.0],
        value=state.get("replay_speed", 1.0),
        key="replay_speed_widget",
        label_visibility="collapsed",
        format_func=lambda v: f"{v:g} step{'s' if v != 1 else ''}/s",
    )
    state["replay_speed"] = state["replay_speed_widget"]
    every = 1.0 / state["replay_speed"] if playing else None
    st.fragment(replay.step_view, run_every=every)(choice)


replay_page()
