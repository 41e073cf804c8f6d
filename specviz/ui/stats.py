"""Statistics (pages/stats.py): acceptance, tokens per step against the theory, the cost ratio,
and the verdict. A serving engine's statistics below them come from specviz.ui.engine."""

from __future__ import annotations

from typing import Any

import streamlit as st

from specviz import figures as fg
from specviz.core import theory
from specviz.figures import stats as fstats
from specviz.figures import tree as ftree
from specviz.trace import Trace, no_draft_words, rate, summarize, undefined_words
from specviz.ui.common import md_escape, plot
from specviz.ui.traces import TraceChoice, draft_words, meta_md

__all__ = [
    "show_stats",
]


@st.cache_data(max_entries=64, show_spinner=False)
def _summary(cache_key: str, _trace: Trace) -> dict[str, Any]:
    return summarize(_trace)


def _first_left_out(trace: Trace) -> bool:
    """Whether theory.timed_steps left step 0's timing out of c (it does when a later step is timed)."""
    return len(theory.timed_steps(trace)) < sum(1 for st in trace["steps"] if st.get("timing_ms"))


def show_stats(choice: TraceChoice) -> None:
    trace = choice.trace
    if not trace["steps"]:
        st.info("This trace has no steps.")
        return
    s = _summary(choice.cache_key, trace)
    k = theory.measure(trace, summary=s)  # the cost model's numbers: the same the exercises and the lab read
    st.markdown(meta_md(trace))
    if words := draft_words(trace):
        st.caption(words)
    if words := ftree.tree_stats_words(trace):
        st.caption(md_escape(words))
    cols = [*st.columns(4), *st.columns(4)]  # two rows: seven labels in one row are cut off at 1440 px
    cols[0].metric("steps", k.steps)
    cols[1].metric("tokens", s["tokens"])
    cols[2].metric(
        "α",
        rate(k.alpha),
        help="accepted / (accepted + rejections): the per-decision acceptance"
        + (f". n/a: {undefined_words(s)}" if k.alpha is None else ""),
    )
    cols[3].metric(
        "tokens / step",
        f"{k.tokens_per_step:.2f}",
        f"theory {rate(k.expected_tokens_per_step)}",
        delta_color="off",
        delta_arrow="off",
    )
    cols[4].metric(
        "cost ratio c",
        "—" if k.c is None else f"{k.c:.3f}",
        help="draft time per draft token ÷ verify time per step (the timed steps after the first)",
    )
    cols[5].metric(
        "ideal speedup",
        "—" if k.ideal_speedup is None else f"{k.ideal_speedup:.2f}×",
        None
        if k.ideal_speedup is None
        else "measured: —"
        if k.measured_speedup is None
        else f"measured {k.measured_speedup:.2f}×",
        delta_color="off",
        delta_arrow="off",
        help=f"{theory.IDEAL_WORDS[0].upper()}{theory.IDEAL_WORDS[1:]}: the formula below, an upper bound, not a "
        "measurement.",
    )
    cols[6].metric(
        "measured speedup",
        "—" if k.measured_speedup is None else f"{k.measured_speedup:.2f}×",
        help="This run's tokens/s ÷ the evaluation model alone's, timed the same way right after it"
        if k.measured_speedup is not None
        else "Not measured: this trace has no target-alone timing. Record it on the Live page with 'Also run the "
        "evaluation model alone'.",
    )
    if k.ideal_speedup is not None:
        st.caption(
            md_escape(
                f"Ideal speedup: {k.ideal_speedup:.2f}× by the formula, which assumes {theory.IDEAL_ASSUMPTION}. "
                + (
                    f"Measured beside it: {k.measured_speedup:.2f}× the evaluation model alone, timed the same way."
                    if k.measured_speedup is not None
                    else "This trace has no measured speedup to hold against it (no target-alone timing)."
                )
            )
        )
    tokens_col, speedup_col = st.columns(2)
    tokens_col.latex(r"\text{tokens per step} = \frac{1-\alpha^{\gamma+1}}{1-\alpha}")
    speedup_col.latex(r"\text{ideal speedup} = \frac{1-\alpha^{\gamma+1}}{(1-\alpha)(\gamma c+1)}")
    st.markdown("**Verdict**")
    for line in fg.verdict(k):
        st.info(md_escape(line))
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Acceptance per draft position**")
        plot(fg.per_position_figure(s, counts=fstats.position_counts(trace)), "stats_positions")
        st.caption(
            f"Each bar: accepted / tested at that position, with a 95% Wilson interval; bars with fewer than "
            f"{fstats.FEW_TRIALS} tests are faded."
        )
        st.markdown("**Tokens per step against the theory**")
        plot(fg.tokens_per_step_figure(k), "stats_theory")
    with right:
        st.markdown("**How many drafts each step accepted**")
        plot(fg.accepted_lengths_figure(s, k.gamma), "stats_lengths")
        if s["steps_without_draft"]:
            st.caption(
                md_escape(
                    f"{s['steps_without_draft']} of {s['steps']} steps drafted nothing ({no_draft_words(s)}) and "
                    "are left out: the evaluation model wrote their token alone."
                )
            )
        st.markdown("**Draft vs verify time per step**")
        if any(s.get("timing_ms") for s in trace["steps"]):
            plot(fg.timing_figure(trace), "stats_timing")
        else:
            st.info("No step timings in this trace, so no cost analysis: c and the ideal speedup need them.")
    if k.draft_ms_per_token is not None and k.verify_ms_per_pass is not None:
        st.caption(
            f"Measured: {k.draft_ms_per_token:.2f} ms per draft token, {k.verify_ms_per_pass:.1f} ms per verification "
            f"pass, so c = {k.c:.3f}"
            + (" (step 0 left out: its draft also reads the prompt)" if _first_left_out(trace) else "")
            + ". Times come from the machine that recorded the trace."
            + (
                f" The evaluation model alone took {k.target_ms_per_token:.1f} ms per token, so one verification pass "
                f"cost {k.verify_passes:.2f} of its tokens (the ideal assumes 1.0); with these measured costs the "
                f"formula predicts {k.speedup_at_measured_costs:.2f}×, and the run measured {k.measured_speedup:.2f}×."
                if k.measured_speedup is not None
                else f" The evaluation model alone took {k.target_ms_per_token:.1f} ms per token, so one verification "
                f"pass cost {k.verify_passes:.2f} of its tokens (the ideal assumes 1.0); with these measured costs "
                f"the formula predicts {k.speedup_at_measured_costs:.2f}×."
                if k.target_ms_per_token and k.verify_passes and k.speedup_at_measured_costs
                else " The ideal speedup assumes a verification pass costs one token of the evaluation model alone; "
                "no target-alone timing was recorded to check that."
            )
        )
