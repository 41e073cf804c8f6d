"""Exercises (pages/exercises.py, URL /exercises?trace=NAME&seed=N): the course's questions about
real trace steps, marked on the first attempt, each with a link to its step and its glossary entry.
Question text comes from specviz.teach.exercises (and its scenarios, with their charts) and is shown
through md_escape, never as HTML."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from specviz.teach import exercises as ex
from specviz.ui.common import md_escape, plot
from specviz.ui.glossary import GLOSSARY_TITLES, glossary_entry
from specviz.ui.traces import sample_traces

__all__ = [
    "exercises_view",
]


MAX_SEED = 1_000_000


def _query_int(name: str, default: int, low: int, high: int) -> int:
    raw = st.query_params.get(name)
    try:
        value = int(str(raw)) if raw is not None else default
    except ValueError:
        return default
    return min(max(value, low), high)


def _answers() -> dict[str, dict[str, Any]]:
    """This session's answers: "trace:seed:qid" → {"choice", "correct", "first"}; the first attempt scores."""
    return st.session_state.setdefault("exercise_answers", {})


def _check(key: str, widget: str, question: ex.Question) -> None:
    choice = st.session_state.get(widget)
    if choice is None:
        st.session_state[f"{widget}_nochoice"] = True
        return
    st.session_state.pop(f"{widget}_nochoice", None)
    answers = _answers()
    correct = ex.mark(question, int(choice))
    first = answers.get(key, {}).get("first", correct)
    answers[key] = {"choice": int(choice), "correct": correct, "first": first}


def _new_set() -> None:
    st.session_state["exercise_seed"] = min(int(st.session_state.get("exercise_seed", 0)) + 1, MAX_SEED)


def exercises_view() -> None:
    samples = sample_traces()
    names = list(samples)
    state = st.session_state
    # the URL wins when it changed (a shared link, back/forward); otherwise the widgets do
    wanted = st.query_params.get("trace")
    if wanted in samples and wanted != state.get("exercise_trace_url"):
        state["exercise_trace"] = wanted
    if state.get("exercise_trace") not in samples:
        state["exercise_trace"] = names[0]
    url_seed = st.query_params.get("seed")
    if url_seed is not None and url_seed != state.get("exercise_seed_url"):
        state["exercise_seed"] = _query_int("seed", 1, 0, MAX_SEED)
    state.setdefault("exercise_seed", 1)
    pick, seed_col, new_col = st.columns([3, 1, 1], vertical_alignment="bottom")
    name = pick.selectbox("Questions from the trace", names, key="exercise_trace")
    seed = int(
        seed_col.number_input(
            "Seed", 0, MAX_SEED, key="exercise_seed", help="The same seed and trace give every student the same set."
        )
    )
    new_col.button("New set", icon=":material/refresh:", on_click=_new_set, key="exercise_new", shortcut="N")
    if name != "toy":
        st.query_params["trace"] = state["exercise_trace_url"] = name
    st.query_params["seed"] = state["exercise_seed_url"] = str(seed)
    trace = samples[name]
    quiz = ex.make_quiz(trace, seed, name)
    answers = _answers()
    keys = [f"{name}:{seed}:{q.qid}" for q in quiz]
    done = [answers[k] for k in keys if k in answers]
    total = list(answers.values())
    score, so_far, session = st.columns(3)
    score.metric("This set", f"{sum(a['first'] for a in done)} / {len(quiz)}", help="first attempts that were right")
    so_far.metric("Answered", f"{len(done)} of {len(quiz)}")
    session.metric("This session", f"{sum(a['first'] for a in total)} / {len(total)}", help="every set you answered")
    st.caption(
        f"Share this set with a class: the address bar holds it (…/exercises?trace={md_escape(name)}&seed={seed}). "
        "Every question is about a real step of the trace; the link under each answer opens that step."
    )
    for i, (q, key) in enumerate(zip(quiz, keys, strict=True)):
        with st.container(border=True):
            _question(i, q, key, name if name != "toy" else None)


def _question(i: int, q: ex.Question, key: str, sample: str | None) -> None:
    st.markdown(f"**{i + 1}. {md_escape(q.title)}**")
    st.markdown(md_escape(q.text))
    if q.details:
        st.markdown("\n".join(f"- {md_escape(line)}" for line in q.details))
    if q.figure is not None:  # a scenario's chart, built from the same numbers as the question
        plot(go.Figure(q.figure), f"exercise_fig_{key}")
    widget = f"exercise_q_{key}"
    st.radio(
        "Your answer",
        list(range(len(q.options))),
        index=None,
        format_func=lambda j: md_escape(q.options[j]),
        key=widget,
        label_visibility="collapsed",
    )
    st.button("Check", key=f"exercise_check_{key}", on_click=_check, args=(key, widget, q))
    if st.session_state.get(f"{widget}_nochoice"):
        st.warning("Pick an answer first.")
    answer = _answers().get(key)
    if answer is None:
        return
    right = md_escape(q.options[q.answer])
    if answer["correct"]:
        st.success(f"Correct. {md_escape(q.explanation)}")
    else:
        st.error(f"Not quite: the answer is “{right}”. {md_escape(q.explanation)}")
    links = st.columns(2)
    if q.step is not None and sample is not None:
        links[0].page_link(
            "pages/replay.py",
            label=f"See step {q.step} in the step-through view",
            icon=":material/manage_search:",
            query_params={"trace": sample, "step": str(q.step)},
        )
    anchor = ex.GLOSSARY[q.kind]
    # a popover, not a link to the lab's glossary: leaving the page by a plain link would start a new session
    with links[1].popover(f"Glossary: {GLOSSARY_TITLES[anchor]}", icon=":material/menu_book:"):
        glossary_entry(anchor)
