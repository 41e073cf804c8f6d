"""Compare (pages/compare.py, URL /compare?a=NAME&b=NAME): two traces side by side, where their
outputs part, tokens per step and time per token, optionally against the evaluation model alone;
a serving engine's numbers beside them (specviz.ui.engine)."""

from __future__ import annotations

import streamlit as st

from specviz import figures as fg
from specviz.core import theory
from specviz.figures import compare as fcompare
from specviz.models.presets import DEFAULT, NGRAM
from specviz.run import live
from specviz.trace import Trace, rate
from specviz.ui.common import md_escape, plot
from specviz.ui.engine import engine_section
from specviz.ui.runs import generation_slot, ref_key, reference_outputs, run_control
from specviz.ui.traces import meta_md, sample_traces

__all__ = [
    "compare_view",
    "like_for_like",
]


def like_for_like(sources: dict[str, tuple[str, Trace]]) -> tuple[str, str]:
    """The pair Compare opens on: two traces of the same prompt and evaluation model (the greedy sample with
    the standalone draft and with the feature draft, where both exist), else the first two."""
    keys = list(sources)
    if "sample:greedy" in sources and "sample:feature-greedy" in sources:
        return "sample:greedy", "sample:feature-greedy"
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            ta, tb = sources[a][1], sources[b][1]
            if ta["prompt"]["token_ids"] == tb["prompt"]["token_ids"] and ta["meta"].get("target") == tb["meta"].get(
                "target"
            ):
                return a, b
    return keys[0], keys[min(1, len(keys) - 1)]


def _compare_sources() -> dict[str, tuple[str, Trace]]:
    out: dict[str, tuple[str, Trace]] = {f"sample:{n}": (f"Sample · {n}", t) for n, t in sample_traces().items()}
    for key, item in st.session_state.get(
        "traces", {}
    ).items():  # traces.session_traces: this session's runs and uploads
        out[key] = (str(item["label"]), item["trace"])
    for i, run in enumerate((st.session_state.get("sweep") or {}).get("runs", [])):
        out[f"sweep:{i}"] = (f"Sweep · {run['label']}", run["trace"])
    return out


def _reference_form(trace: Trace) -> None:
    with st.expander("Run the evaluation model alone on this prompt (the target-only output)"):
        st.caption(
            "Decodes trace A's prompt with the evaluation model only, with A's temperature, top-k, top-p, seed and "
            "token budget. At temperature 0 this is the text every lossless run must reproduce."
        )
        spec = st.text_input(
            "Evaluation (target) model",
            DEFAULT,
            key="compare_ref_target",
            help="the model the trace was recorded with: hub id, directory, .gguf or 'default'",
        )
        st.button("Run it", key="compare_ref_run", on_click=_raise, args=("compare_ref_go",))
    if st.session_state.pop("compare_ref_go", False):
        _run_reference(spec.strip(), trace)


def _raise(flag: str) -> None:
    st.session_state[flag] = True


def _run_reference(spec: str, trace: Trace) -> None:
    from specviz.core.decoder import target_decode
    from specviz.core.warp import Sampling

    m = trace["meta"]
    samp = m.get("sampling", {})
    control = run_control()
    with generation_slot(st.empty()):
        try:
            with st.spinner(f"Loading {md_escape(spec)} (once per server process)…"):
                target, _ = live.load_models(spec, NGRAM)
            want = str(m.get("target", {}).get("name", ""))
            if want and target.name != want:
                st.error(
                    f"Trace A was recorded with {md_escape(want)}, but {md_escape(spec)} is "
                    f"{md_escape(target.name)}: its output would not be this trace's reference."
                )
                return
            sampling = Sampling(
                float(samp.get("temperature", 1.0)), int(samp.get("top_k", 0)), float(samp.get("top_p", 1.0))
            )
            with st.spinner("The evaluation model alone…"):
                ids = list(
                    target_decode(
                        target,
                        list(trace["prompt"]["token_ids"]),
                        sampling,
                        int(m.get("max_new_tokens") or len(trace["output"]["token_ids"]) or 1),
                        int(m.get("seed") or 0),
                        should_stop=control.should_stop,
                    )
                )
        except Exception as exc:  # the UI boundary: a model load, a bad setting
            st.error(f"Could not run the evaluation model: {md_escape(f'{type(exc).__name__}: {exc}'[:600])}")
            return
    reference_outputs()[ref_key(trace)] = {"token_ids": ids, "tokens": [target.token_text(i) for i in ids]}
    st.rerun()


def _mean_p_accepted(trace: Trace) -> float | None:
    ps = [v["p"] for s in trace["steps"] for v in s["verify"][: s["n_accepted"]]]
    return sum(ps) / len(ps) if ps else None


def _goto(start: int, limit: int) -> None:
    st.session_state["compare_start"] = min(max(0, start), max(0, limit))


def _shift(delta: int, limit: int) -> None:
    _goto(int(st.session_state.get("compare_start", 0)) + delta, limit)


def compare_view() -> None:
    sources = _compare_sources()
    keys = list(sources)
    state = st.session_state
    for side, default in zip(("a", "b"), like_for_like(sources), strict=True):
        wanted = st.query_params.get(side)
        if wanted and f"sample:{wanted}" in sources and wanted != state.get(f"compare_{side}_url"):
            state[f"compare_{side}"] = f"sample:{wanted}"
        if state.get(f"compare_{side}") not in sources:
            state[f"compare_{side}"] = default
    ca, cb = st.columns(2)
    ka = ca.selectbox("Trace A", keys, format_func=lambda k: sources[k][0], key="compare_a")
    kb = cb.selectbox("Trace B", keys, format_func=lambda k: sources[k][0], key="compare_b")
    for side, k in (("a", ka), ("b", kb)):
        if k.startswith("sample:"):
            st.query_params[side] = state[f"compare_{side}_url"] = k.removeprefix("sample:")
        else:
            st.query_params.pop(side, None)
    (la, a), (lb, b) = sources[ka], sources[kb]
    ids_a, ids_b = a["output"]["token_ids"], b["output"]["token_ids"]
    if a["prompt"]["token_ids"] != b["prompt"]["token_ids"]:
        st.warning(
            "These two traces start from different prompts: the outputs are aligned by position, but they are not a like-for-like comparison."
        )
    refs = reference_outputs()
    ref_a, ref_b = refs.get(ref_key(a)), refs.get(ref_key(b))
    where = fcompare.divergence(ids_a, ids_b)
    ca, cb = st.columns(2)
    for col, side, label, t, ref in ((ca, "a", la, a, ref_a), (cb, "b", lb, b, ref_b)):
        with col:
            _compare_card(side, label, t, None if ref is None else ref["token_ids"])
    if slower := fcompare.more_tokens_slower_words(theory.measure(a, la), theory.measure(b, lb)):
        st.caption(md_escape(slower))  # our own words and numbers; the labels are not in it
    prov_a, prov_b = fg.provenance(a), fg.provenance(b)
    rows: list[tuple[str, list[fg.OutTok]]] = [("A · " + la, prov_a), ("B · " + lb, prov_b)]
    reference = ref_a or ref_b
    if reference is None:
        marks: list[int | None] = [None, where]
    else:  # both rows measured against the evaluation model alone (where it is the reference for their settings)
        marks = [None] + [
            fcompare.divergence(ids, reference["token_ids"]) if ref is reference else None
            for ids, ref in ((ids_a, ref_a), (ids_b, ref_b))
        ]
    if where is None:
        st.success("The two outputs are identical, token for token.")
    else:
        ta = md_escape(fg.visible(prov_a[where].token)) if where < len(prov_a) else "the end"
        tb = md_escape(fg.visible(prov_b[where].token)) if where < len(prov_b) else "the end"
        agree = f"{where} token{'s' if where != 1 else ''}"
        st.info(f"The outputs agree for {agree}; at position {where} A has “{ta}” and B has “{tb}”.")
    longest = max(len(prov_a), len(prov_b), 0 if reference is None else len(reference["tokens"]))
    width = fcompare.COMPARE_WIDTH
    limit = max(0, longest - width)
    if state.get("compare_pair") != (ka, kb):  # a new pair: show where they part
        state["compare_pair"] = (ka, kb)
        _goto(0 if where is None else where - 5, limit)
    if state.get("compare_start", 0) > limit:
        state["compare_start"] = limit
    nav = st.columns([1, 1, 1, 4], vertical_alignment="center")
    nav[0].button("◀ Earlier", key="compare_prev", on_click=_shift, args=(-width // 2, limit), shortcut="Left")
    nav[1].button("Later ▶", key="compare_next", on_click=_shift, args=(width // 2, limit), shortcut="Right")
    if where is not None:
        nav[2].button("Departure", key="compare_goto", on_click=_goto, args=(where - 5, limit))
    start = int(state.get("compare_start", 0))
    nav[3].caption(f"Output positions {start}–{min(start + width, longest) - 1} of {longest} (← and → keys move too).")
    ref_row = None if reference is None else ("evaluation model alone", reference["tokens"])
    plot(fcompare.compare_timeline_figure(rows, start, width, marks, ref_row), "compare_timeline")
    if reference is None:
        _reference_form(a)
    plot(fcompare.compare_progress_figure([("A · " + la, a), ("B · " + lb, b)]), "compare_progress")
    st.caption(
        "At temperature 0 a lossless rule (sampling or greedy) reproduces the evaluation model's own text exactly, so a "
        "departure there is a bug or a lossy rule. Above temperature 0 even two lossless runs differ as text — the "
        "random numbers are used differently — and the guarantee is about the distribution; compare the mean p of "
        "accepted drafts instead: a lossy rule accepts tokens the evaluation model finds unlikely."
    )
    engine_section("compare", [("A · " + la, a), ("B · " + lb, b)])


def _compare_card(side: str, label: str, trace: Trace, ref: list[int] | None) -> None:
    m = theory.measure(trace, label)
    meta = trace["meta"]
    rule = meta.get("rule", {})
    st.markdown(f"**{md_escape(label)}**")
    st.caption(meta_md(trace))
    c = [*st.columns(2), *st.columns(2)]  # two rows in a half-width card: labels stay whole
    c[0].metric("tokens per step", f"{m.tokens_per_step:.2f}")
    c[1].metric("ms per token", "—" if m.ms_per_token is None else f"{m.ms_per_token:.1f}")
    c[2].metric("α", rate(m.alpha), help="n/a: this trace drafted nothing, so no acceptance was measured")
    mp = _mean_p_accepted(trace)
    c[3].metric(
        "mean p of accepted",
        "—" if mp is None else f"{mp:.2f}",
        help="how likely the evaluation model found the drafts it accepted",
    )
    st.caption(f"Rule {md_escape(str(rule.get('name')))}: {'lossless' if rule.get('lossless', True) else 'lossy'}.")
    if m.ideal_speedup is not None:  # the formula's number, its assumption and the measured time side by side
        st.caption(f"Speedup: {md_escape(fcompare.ideal_words(m))}.")
    if ref is not None:
        d = fcompare.divergence(trace["output"]["token_ids"], ref)
        st.caption(
            "Same text as the evaluation model alone."
            if d is None
            else f"Departs from the evaluation model alone at position {d}."
        )
    st.download_button(
        "Printable summary (HTML)",
        fcompare.summary_html(trace, label),
        file_name="specviz-summary.html",
        mime="text/html",
        icon=":material/print:",
        key=f"compare_print_{side}",
        help="A one-page summary to print or save as PDF from the browser.",
    )
