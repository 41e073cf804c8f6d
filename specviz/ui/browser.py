"""Live in your browser: every student decodes on their own computer, with the exported pair.

The page itself is static (specviz/assets/live/, exported with the models into static/live/ next to
app.py, which Streamlit serves at /app/static/live/); this module embeds it, or, while that folder
is missing, says how to make it and, for a visitor on the server's own machine, can start the export
(specviz.run.exportjob: one at a time per server, in the background, progress polled here).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from specviz.run import exportjob

__all__ = ["LIVE", "browser_view", "page_url"]

LIVE = Path(__file__).resolve().parent.parent.parent / "static" / "live"  # next to app.py: Streamlit serves it
COMMAND = "python -m specviz export-live -o static/live"
FRAME_HEIGHT = 1500  # the page's controls, output and a few steps without a second scroll bar


def page_url() -> str:
    """The static page's path on this server, under its base URL path when it has one (behind a proxy)."""
    base = str(st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}/app/static/live/index.html" if base else "/app/static/live/index.html"


def _explain_missing() -> None:
    st.info(
        "This page runs the default pair, exported to ONNX, in your own browser: each student decodes on "
        "their own computer and the server only hands out files. The exported folder is not on this server yet. "
        f"Make it once with `{COMMAND}` in the app's folder (a few minutes; docs/BROWSER.md), or here:"
    )


@st.fragment(run_every=1.0)
def _progress() -> None:
    """The export's progress, redrawn every second while it runs; the whole page once it is done."""
    state = exportjob.job_for(LIVE).state()
    if state.status == "running":
        st.info(f"Exporting the models for the browser… {state.seconds:.0f} s so far (one export at a time).")
        if state.lines:
            st.code("\n".join(state.lines), language=None)
    elif state.status == "done" or exportjob.folder_ready(LIVE):
        st.rerun()  # the folder is in place: embed it
    elif state.status == "failed":
        st.error(f"The export did not finish: {state.error}. Run `{COMMAND}` in a terminal to see every message.")
        if state.lines:
            st.code("\n".join(state.lines), language=None)


def _start_export() -> None:
    # a callback: it runs before the script, so a rerun during the run cannot swallow the click
    if not exportjob.job_for(LIVE).start():
        st.session_state["browser_export_busy"] = True


def _offer_export(remote: str | None) -> None:
    """The export button for a visitor on the server's own machine (`remote` None: Streamlit's
    st.context.ip_address for localhost); a visitor from elsewhere gets the command to pass on instead."""
    _explain_missing()
    job = exportjob.job_for(LIVE)
    running = job.state().status == "running"
    if remote is None:
        st.button("Export the models now", disabled=running, on_click=_start_export, key="browser_export")
    else:  # a class's server: one student's click would slow every live decode on it for minutes
        st.caption(
            "Only someone on the server's own machine can start the export here: it takes the server's CPU for a "
            "few minutes, slowing every live decode. Ask whoever runs this server to make the folder."
        )
    if st.session_state.pop("browser_export_busy", False):
        st.warning("An export is already running on this server; its progress follows.")
    if job.state().status != "idle":
        _progress()


def browser_view() -> None:
    """Embed the browser page, or offer to make it."""
    if not exportjob.folder_ready(LIVE):
        _offer_export(st.context.ip_address)
        return
    url = page_url()
    st.caption(
        "Both models run in this browser tab (ONNX Runtime Web; WebGPU where your browser has it). The first "
        "visit downloads them; the browser keeps them for the next. Nothing you type is sent to the server. "
        f"[Open the page on its own]({url}) for more room, or to keep it when you leave the app. A trace "
        "downloaded there replays in Step through, Statistics and Compare."
    )
    st.iframe(url, height=FRAME_HEIGHT)
