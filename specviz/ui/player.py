"""The trace player on the step-through page: a Streamlit component (components v2) that steps in the browser.

The server computes the player's data once per trace (specviz.teach.player, cached) and hands it to the
component; from then on Next, Prev, Home, End, the slider, play and a click on the timeline change
the step in the browser, with no rerun of the script. The component never sends a value back, so
stepping costs the server nothing.

Plotly.js comes from the installed `plotly` package, copied once into the app's `static/` folder
(served by Streamlit's static serving, `server.enableStaticServing` in .streamlit/config.toml) so
browsers cache it: nothing is fetched from outside.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import plotly
import streamlit as st

from specviz.teach import lesson
from specviz.teach import player as pd
from specviz.trace import Trace
from specviz.ui.common import md_escape

__all__ = ["plotly_url", "show_player"]

STATIC = Path(__file__).resolve().parent.parent.parent / "static"  # next to app.py: Streamlit serves it

_MOUNT_JS = """
const SVZ_MOUNTS = new WeakMap();

// this server's copy of Plotly.js, kept apart from any other on the page (Streamlit's own charts
// bring theirs and may have set window.Plotly first)
function svzPlotly(src) {
  if (!window.__svzPlotly) {
    window.__svzPlotly = new Promise((resolve, reject) => {
      const before = window.Plotly;
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => {
        const mine = window.Plotly;
        if (before) window.Plotly = before;
        resolve(mine);
      };
      s.onerror = () => {
        window.__svzPlotly = null; // the next mount tries again
        reject(new Error("Plotly.js could not be loaded from this server (" + src + "): reload the page."));
      };
      document.head.appendChild(s);
    });
  }
  return window.__svzPlotly;
}

export default function (component) {
  const { data, parentElement } = component;
  const mount = parentElement.querySelector(".svz-mount");
  const prev = SVZ_MOUNTS.get(parentElement);
  if (prev && prev.key === data.key) {
    // the same trace and look: keep the player; a new link step (back / forward) moves it
    if (prev.player && data.step !== prev.step) prev.player.go(data.step);
    prev.step = data.step;
    return prev.release;
  }
  let step = data.step;
  if (prev) {
    // the look changed (presentation mode), the trace did not: stay on the step
    if (prev.player && prev.player.state.data && prev.trace === data.trace) step = prev.player.state.k;
    prev.destroy();
  }
  const entry = { key: data.key, trace: data.trace, step: data.step, player: null };
  entry.destroy = () => {
    if (entry.player) entry.player.destroy();
    entry.player = null;
    if (SVZ_MOUNTS.get(parentElement) === entry) SVZ_MOUNTS.delete(parentElement);
  };
  // Streamlit calls the cleanup of a superseded call at once: only the latest call's may destroy
  const release = () => {
    if (SVZ_MOUNTS.get(parentElement) === entry && entry.release === release) entry.destroy();
  };
  entry.release = release;
  SVZ_MOUNTS.set(parentElement, entry);
  svzPlotly(data.plotly)
    .then((plotly) => {
      if (SVZ_MOUNTS.get(parentElement) !== entry) return;
      const source = [{ name: data.name, packed: data.packed }];
      entry.player = specvizPlayer(mount, source, { step, link: "query", plotly });
    })
    .catch((e) => {
      mount.textContent = e.message;
      entry.destroy(); // the next run mounts afresh
    });
  return release;
}
"""

_PLAYER = st.components.v2.component(
    "specviz.teach.player",
    html='<div class="svz-mount svz"></div>',
    css=lesson.player_css(),
    js=lesson.player_js() + _MOUNT_JS,
    isolate_styles=False,  # Plotly.js styles its charts from the page's <head>: no shadow root
)


def plotly_url() -> str | None:
    """The URL (relative to the page) of Plotly.js in the app's static folder, copied there from the
    installed `plotly` package if it is not yet; None if the folder cannot be written."""
    name = f"plotly-{plotly.__version__}.min.js"
    target = STATIC / name
    if not target.exists():
        try:
            STATIC.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=STATIC, prefix=".plotly-", suffix=".js")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(lesson.plotly_js())
                os.chmod(tmp, 0o644)  # served to every browser
                os.replace(tmp, target)  # whole or not at all: another session may be reading it
            finally:
                Path(tmp).unlink(missing_ok=True)
        except OSError:
            return None
    return f"app/static/{name}"


@st.cache_data(max_entries=16, show_spinner=False)
def _packed(cache_key: str, name: str, meta_line: str, presentation: bool, _trace: Trace) -> str:
    return pd.pack(pd.player_data(_trace, name, meta_line, presentation))


def show_player(cache_key: str, name: str, trace: Trace, meta_line: str, step: int, presentation: bool) -> Any:
    """Mount the player for a trace at `step`. Returns the component's (empty) result."""
    url = plotly_url()
    if url is None:
        st.error(
            f"The step-through player needs Plotly.js in {STATIC}, and this server cannot write that folder. Make "
            "it writable by the app's user (the app copies Plotly.js there from the plotly package on first use)."
        )
        return None
    try:
        packed = _packed(cache_key, name, meta_line, presentation, trace)
    except (ValueError, KeyError, TypeError, IndexError) as exc:  # a number JSON cannot carry; a field missing
        st.error(
            f"This trace cannot be played ({type(exc).__name__}: {md_escape(str(exc)[:200])}). "
            "Check it with `python -m specviz validate --minimal`."
        )
        return None
    data = {
        "key": f"{cache_key}:{int(presentation)}",
        "trace": cache_key,  # changes whenever the trace's content can have changed
        "name": name,
        "step": step,
        "plotly": url,
        "packed": packed,
    }
    return _PLAYER(data=data, key="svz_player", height="content")
