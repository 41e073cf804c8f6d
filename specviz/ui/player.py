"""The trace player on the step-through page: a Streamlit component (components v2) that steps in the browser.

The server computes the player's data once per trace (specviz.player, cached) and hands it to the
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

from specviz import lesson
from specviz import player as pd
from specviz.trace import Trace

__all__ = ["plotly_url", "show_player"]

STATIC = Path(__file__).resolve().parent.parent.parent / "static"  # next to app.py: Streamlit serves it

_MOUNT_JS = """
const SVZ_MOUNTS = new WeakMap();

function svzPlotly(src) {
  if (window.Plotly) return Promise.resolve();
  if (!window.__svzPlotly) {
    window.__svzPlotly = new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = () => resolve();
      s.onerror = () => {
        window.__svzPlotly = null;
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
  if (prev && prev.key === data.key) return prev.cleanup; // same trace and look: keep the player and its step
  let step = data.step;
  if (prev) {
    if (prev.player && prev.trace === data.trace) step = prev.player.state.k; // the look changed: same step
    prev.cleanup();
  }
  const entry = { key: data.key, trace: data.trace, player: null };
  entry.cleanup = () => {
    if (entry.player) entry.player.destroy();
    entry.player = null;
    SVZ_MOUNTS.delete(parentElement);
  };
  SVZ_MOUNTS.set(parentElement, entry);
  svzPlotly(data.plotly)
    .then(() => {
      if (SVZ_MOUNTS.get(parentElement) !== entry) return;
      entry.player = specvizPlayer(mount, [{ name: data.trace, packed: data.packed }], { step, link: "query" });
    })
    .catch((e) => {
      mount.textContent = e.message;
    });
  return entry.cleanup;
}
"""

_PLAYER = st.components.v2.component(
    "specviz.player",
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
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(lesson.plotly_js())
            os.replace(tmp, target)  # whole or not at all: another session may be reading it
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
            f"The player needs Plotly.js in {STATIC}, which this server cannot write. Run `make setup` once as a "
            "user who may write there, or download the lesson file below: it plays without the server."
        )
        return None
    try:
        packed = _packed(cache_key, name, meta_line, presentation, trace)
    except ValueError as exc:  # a number JSON cannot carry
        st.error(f"This trace cannot be played: {exc}. Check it with `python -m specviz validate --minimal`.")
        return None
    data = {
        "key": f"{cache_key}:{int(presentation)}",
        "trace": name,
        "step": step,
        "plotly": url,
        "packed": packed,
    }
    return _PLAYER(data=data, key="svz_player", height="content")
