"""specviz entry point: routes to the pages. Run with `make run` (or `streamlit run app.py`)."""

import streamlit as st

st.set_page_config(page_title="specviz", layout="wide")
st.title("specviz")
st.write("Speculative decoding, step by step. The pages arrive with the app issue; the CLI works now: `python -m specviz --help`.")
