"""Live decoding: pick a model pair and settings, run, watch the text grow, then read the speed verdict
against the evaluation model alone, the steps on the timeline, and keep or download the trace."""

import streamlit as st

from specviz.ui import common, live, live_form


def live_page() -> None:
    common.page_start("Live decoding")
    st.caption(
        "The models load once per server and are shared by every visitor; runs take turns. Decoding runs in a "
        "worker on the server while this page follows it, then (unless unticked) the evaluation model runs alone "
        "with the same settings for comparison; the speeds shown at the end are the worker's own timings."
    )
    settings = live_form.live_form()
    live.recover_partial()  # a run interrupted by Stop leaves a partial trace: keep it
    if live.run_button():
        live.run_live(settings)
    result = st.session_state.get("live_result")
    if result is not None:
        live.show_live_result(result)
    else:
        st.info(live.while_running_words(settings.compare))


live_page()
