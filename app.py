"""specviz entry point: only routes. Run with `make run` (or `streamlit run app.py`).

Deep links rely on these URL paths: / (home), /live, /replay?trace=NAME&step=N, /stats?trace=NAME,
/exercises?trace=NAME&seed=N, /speedup, /compare?a=NAME&b=NAME, /browser; any of them with &present=1 opens
in presentation mode.
"""

from pathlib import Path

import streamlit as st

# the icon is a file here: a Material icon name would make every browser fetch it from fonts.gstatic.com
st.set_page_config(
    page_title="specviz · speculative decoding",
    page_icon=str(Path(__file__).parent / "assets" / "favicon.png"),
    layout="wide",
)
pages = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="", default=True),
    st.Page("pages/live.py", title="Live decoding", icon=":material/play_circle:", url_path="live"),
    st.Page("pages/browser.py", title="Live in your browser", icon=":material/language:", url_path="browser"),
    st.Page("pages/replay.py", title="Step through", icon=":material/manage_search:", url_path="replay"),
    st.Page("pages/stats.py", title="Statistics", icon=":material/bar_chart:", url_path="stats"),
    st.Page("pages/exercises.py", title="Exercises", icon=":material/quiz:", url_path="exercises"),
    st.Page("pages/speedup.py", title="Speedup lab", icon=":material/speed:", url_path="speedup"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
]
st.navigation(pages).run()
