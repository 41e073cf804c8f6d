"""A serving engine's statistics on the Statistics and Compare pages: a run summary, shown for what it is.

vLLM, SGLang, llama.cpp and TensorRT-LLM log totals (drafted, accepted, sometimes per position or
as a histogram), not steps (specviz.formats.runsummary reads them). This section shows every number such a
file allows, says what each means in the engine's own definition, and says in words what it
cannot show; on Compare it puts the engine's numbers beside the two traces'.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from specviz import figures as fg
from specviz.formats.runsummary import RunSummary, describe, loads_summary, summary_stats
from specviz.trace import Trace, TraceError, rate, summarize
from specviz.ui import traces
from specviz.ui.common import md_escape, plot

__all__ = [
    "engine_section",
    "read_summary",
    "show_run_summary",
    "side_by_side",
]


MAX_SUMMARIES = 5  # per session: each is a few numbers, but an upload loop should not grow without bound


def read_summary(name: str, data: bytes) -> RunSummary | str:
    """Parse an uploaded engine file: the run summary, or what is wrong with it as safe markdown."""
    try:
        return loads_summary(data, name, traces.MAX_UPLOAD_BYTES)
    except TraceError as exc:
        return md_escape(fg.literal(str(exc), 600))


def engine_section(page: str, traces: Sequence[tuple[str, Trace]] = ()) -> None:
    """An uploader for an engine's statistics and, once one is read, everything it holds.

    traces: (label, trace) pairs to set beside the engine's numbers (the Compare page's A and B)."""
    st.markdown("#### Statistics from a serving engine")
    st.caption(
        "vLLM, SGLang, llama.cpp and TensorRT-LLM log totals, not steps. Upload one of their files to see its "
        "numbers next to the theory: vLLM's `SpecDecoding metrics:` log lines or its `/metrics` text, an SGLang "
        "response (`meta_info`), a llama.cpp response (`timings`) or the speculative example's printout, a "
        "TensorRT-LLM response (`speculative_decoding`). docs/EVENTLOG.md lists the fields."
    )
    up = st.file_uploader("Upload an engine's log, metrics or response", key=f"{page}_engine_upload")
    if up is None:
        return
    data = up.getvalue()
    key = hashlib.sha256(data).hexdigest()[:16]
    store: dict[str, Any] = st.session_state.setdefault("engine_summaries", {})
    if key not in store:
        for old in list(store)[: max(0, len(store) - MAX_SUMMARIES + 1)]:
            del store[old]
        store[key] = read_summary(up.name, data)  # plain JSON data or an error message
    rs = store[key]
    if isinstance(rs, str):
        st.error(f"Could not read this file as an engine's statistics. {rs}")
        return
    show_run_summary(rs, traces, page)


def show_run_summary(rs: RunSummary, traces: Sequence[tuple[str, Trace]] = (), page: str = "stats") -> None:
    s = summary_stats(rs)
    st.markdown(f"**{md_escape(fg.literal(rs['source'], 120))}** · {md_escape(fg.literal(rs['name'], 80))}")
    cols = st.columns(5)
    cols[0].metric("drafted tokens", "n/a" if s["drafted"] is None else f"{s['drafted']:,}")
    cols[1].metric("accepted", "n/a" if s["accepted"] is None else f"{s['accepted']:,}")
    cols[2].metric("acceptance rate", rate(s["acceptance_rate"], ".1%"), help="accepted / drafted tokens")
    cols[3].metric(
        "tokens / step",
        rate(s["tokens_per_step"]),
        help="tokens per verification pass, the bonus token included (the engine's mean acceptance length)",
    )
    cols[4].metric("accepted per drafting step", rate(s["mean_accepted"]))
    st.markdown("\n".join(f"- {md_escape(fg.literal(line, 400))}" for line in describe(rs)))
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Acceptance per draft position**")
        if s["per_position_acceptance"]:
            figure = fg.per_position_figure(s | {"alpha": None}, "share of drafting steps")
            plot(figure, f"{page}_engine_positions")
        else:
            st.info("This file has no per-position acceptance.")
    with right:
        st.markdown("**How many drafts each step accepted**")
        counts = s["accepted_length_counts"]
        if counts:
            plot(fg.accepted_lengths_figure(s | {"alpha": None}, len(counts) - 1), f"{page}_engine_lengths")
        else:
            st.info("This file has no histogram of accepted lengths.")
    if traces:
        st.markdown("**Beside the traces**")
        st.dataframe(side_by_side(rs, traces), hide_index=True, width="stretch")


def side_by_side(rs: RunSummary, traces: Sequence[tuple[str, Trace]]) -> pd.DataFrame:
    """The engine's numbers and each trace's under one definition each; n/a where one side has none."""
    columns: dict[str, dict[str, str]] = {f"{rs['engine']} (run summary)": _numbers(summary_stats(rs))}
    for label, trace in traces:
        columns[fg.literal(label, 60)] = _numbers(summarize(trace) | {"per_position_acceptance": _shares(trace)})
    rows = list(dict.fromkeys(r for c in columns.values() for r in c))
    return pd.DataFrame({"": rows, **{name: [c.get(r, "n/a") for r in rows] for name, c in columns.items()}})


def _shares(trace: Trace) -> list[float]:
    """Per draft position j, the share of drafting steps whose accepted run reached past j: the
    engines' definition (vLLM: accepted at position j / drafts), not the trace page's "when evaluated"."""
    drafting = [s for s in trace["steps"] if s["draft"]]
    gamma = max((len(s["draft"]) for s in drafting), default=0)
    return [sum(s["n_accepted"] > j for s in drafting) / len(drafting) for j in range(gamma)] if drafting else []


def _numbers(s: dict[str, Any]) -> dict[str, str]:
    out = {
        "acceptance rate (accepted / drafted)": rate(s.get("acceptance_rate"), ".1%"),
        "tokens per step (bonus included)": rate(s.get("tokens_per_step")),
        "accepted per drafting step": rate(s.get("mean_accepted")),
    }
    for j, a in enumerate(s.get("per_position_acceptance") or []):
        out[f"draft position {j + 1} accepted (share of drafting steps)"] = rate(a, ".1%")
    return out
