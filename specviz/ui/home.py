"""Home (pages/home.py, URL /): speculative decoding on one screen, one real step drawn, and the way
into the Live, Step through and Statistics pages."""

from __future__ import annotations

import streamlit as st

from specviz import figures as fg
from specviz.trace import Trace
from specviz.ui.common import md_escape
from specviz.ui.traces import list_samples, load_sample

__all__ = [
    "home_example",
    "home_view",
]


def home_example() -> tuple[Trace, int, str | None]:
    """A real step to draw on the home page: a correction after at least one accepted draft if possible."""
    for name in list_samples():
        trace = load_sample(name)
        if isinstance(trace, str) or not trace["steps"]:
            continue
        steps = trace["steps"]
        good = [
            s["index"]
            for s in steps
            if s.get("next") and s["next"]["kind"] == "correction" and s["n_accepted"] >= 1 and len(s["draft"]) >= 3
        ]
        return trace, (good[0] if good else 0), name
    return fg.toy_trace(), 0, None


def home_view() -> None:
    """The page below its title: the idea in words beside one real step, then the links."""
    idea, picture = st.columns([5, 7], gap="large")
    with idea:
        st.markdown(
            """
A large **evaluation model** (the target, distribution **p**) writes text one token per forward pass.
Speculative decoding lets a cheap **draft** (distribution **q**) run ahead:

1. **Draft.** The draft proposes **γ** tokens, one after another, each with its probability q.
2. **Verify.** The evaluation model scores all γ drafts in **one** forward pass, giving p for each.
3. **Accept.** Left to right, a draft x is kept when a uniform draw r falls below min(1, p(x)/q(x)).
   The first rejection ends the run: **n_accepted** is the number of drafts accepted in a row.
4. **The evaluation model's token.** With i tokens of context before the step (the drafts took positions
   i + 1 … i + γ), it then generates the token at position i + n_accepted + 1 itself:
   after a rejection from the residual norm(max(0, p − q)) — a **correction** — or, when every draft
   passed, from its own p — a **bonus** token.

Every step therefore adds between 1 and γ + 1 tokens for a single pass of the evaluation model, and with
this rule the text follows exactly the evaluation model's distribution.
"""
        )
    trace, k, sample = home_example()
    with picture:
        label = f"step {k} of the sample “{md_escape(sample)}”" if sample else "an illustration (no sample traces yet)"
        st.markdown(f"**One real step** — {label}")
        st.plotly_chart(fg.step_picture(trace, k), key="home_picture", config={"displayModeBar": False})
        st.info(md_escape(fg.describe_next(trace, k)))
        params = {"trace": sample, "step": str(k)} if sample else None
        # above the fold, where a first-time visitor looks: the one place to begin (newcomer review)
        st.page_link(
            "pages/replay.py",
            label="**Start here: step through this trace, one decision at a time**",
            icon=":material/arrow_forward:",
            query_params=params,
        )
    st.divider()
    live, replay, stats = st.columns(3)
    with live:
        st.page_link("pages/live.py", label="**Live decoding**", icon=":material/play_circle:")
        st.caption("Run a model pair on your prompt and watch the steps arrive; compare with the model alone.")
    with replay:
        st.page_link(
            "pages/replay.py", label="**Step through a trace**", icon=":material/manage_search:", query_params=params
        )
        st.caption("Every decision of a step in words and pictures: q, p, r, n_accepted, the new token.")
    with stats:
        st.page_link("pages/stats.py", label="**Statistics**", icon=":material/bar_chart:")
        st.caption("Acceptance per position, tokens per step against the theory, costs and the bottleneck.")
    exercises, lab, compare = st.columns(3)
    with exercises:
        st.page_link("pages/exercises.py", label="**Exercises**", icon=":material/quiz:")
        st.caption("Questions on a real trace, checked as you answer, each linked to the step it is about.")
    with lab:
        st.page_link("pages/speedup.py", label="**Speedup lab**", icon=":material/speed:")
        st.caption("Move α, γ and c and read the speedup the formula predicts, beside what this machine measured.")
    with compare:
        st.page_link("pages/compare.py", label="**Compare**", icon=":material/compare_arrows:")
        st.caption("Two runs side by side under one definition of each number: a chain against a tree, two rules.")
