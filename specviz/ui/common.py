"""What every page shares: the page header with presentation mode, the sidebar and its legend,
markdown-safe rendering of token text (escaped, never HTML), and charts drawn for the projector.

Imports no page module (see specviz/ui/__init__.py).
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from specviz import figures as fg
from specviz.figures import KINDS, LABELS, SYMBOLS, Kind

__all__ = [
    "PRESENTATION_CSS",
    "legend_md",
    "md_escape",
    "page_start",
    "plot",
    "raise_flag",
    "sidebar",
    "tokens_md",
]


# Streamlit's markdown colour names; .streamlit/config.toml sets them to the figures' palette
MD_COLOR: dict[Kind, str] = {
    "accepted": "green",
    "rejected": "red",
    "unevaluated": "gray",
    "correction": "blue",
    "bonus": "violet",
}
SHAPE: dict[str, str] = {"circle": "●", "x": "✕", "circle-open": "○", "diamond": "◆", "star": "★"}
_MD_SPECIAL = set("\\`*_{}[]()#+-.!|<>~:$=^&")


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
.stApp [data-baseweb="select"] div, [data-baseweb="popover"] li, [data-baseweb="popover"] li *,
.stApp [data-testid="stText"],
.stApp [data-testid="stCode"] code, .stApp [data-testid="stAlertContentInfo"] p { font-size: 1.3rem !important; }
/* projector type in narrow columns: labels wrap onto a second line instead of ending in "…" */
.stApp [data-testid="stMetricLabel"], .stApp [data-testid="stMetricLabel"] *, .stApp [data-testid="stWidgetLabel"],
.stApp [data-testid="stWidgetLabel"] *, .stApp label, .stApp label * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }
.stApp [data-testid="stSlider"] [data-testid="stWidgetLabel"] { margin-bottom: 1.3rem !important; }
.stApp [data-testid="stSliderThumbValue"] { font-size: 1.2rem !important; }
.stApp [data-testid="stDataFrame"], .stApp [data-testid="stTable"] { zoom: 1.4; }
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
        if st.query_params.get("present") != "1":  # a write, even of the same value, resets the address bar
            st.query_params["present"] = "1"
    elif "present" in st.query_params:
        del st.query_params["present"]
    head, toggle = st.columns([4, 1])  # room for "Presentation" in projector type at 1280 px
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


def plot(fig: go.Figure, key: str, **kw: Any) -> Any:
    if st.session_state.get("presentation"):  # a projector: the charts' text grows with the prose
        fig = fg.presented(fig)
    return st.plotly_chart(fig, key=key, config={"displayModeBar": False}, **kw)


def raise_flag(flag: str, value: Any = True) -> None:
    """Button callbacks only raise a flag: the flag, unlike a button's return value, survives a rerun."""
    st.session_state[flag] = value
