"""The Streamlit layer of the learning pages: exercises, the speedup lab, compare.

Shared pieces (page header and presentation mode, sidebar, safe markdown, samples, the model
cache and the generation lock) come from specviz.ui; this module holds only what these three
pages need. Token text and anything else from a trace is shown through ui.md_escape, never as
HTML.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from specviz import engine_ui, live, theory, ui
from specviz import exercises as ex
from specviz import figures as fg
from specviz import figures_learn as fl
from specviz.trace import Trace, dumps, rate

if TYPE_CHECKING:
    from specviz.decoder import DecodeConfig

__all__ = [
    "SweepSettings",
    "compare_view",
    "exercises_view",
    "glossary",
    "glossary_entry",
    "run_sweep",
    "speedup_lab",
    "sweep_rows",
]

MAX_SEED = 1_000_000


def _query_int(name: str, default: int, low: int, high: int) -> int:
    raw = st.query_params.get(name)
    try:
        value = int(str(raw)) if raw is not None else default
    except ValueError:
        return default
    return min(max(value, low), high)


def _samples() -> dict[str, Trace]:
    """Every readable sample by name; the built-in toy example when there are none."""
    out = {}
    for name in ui.list_samples():
        trace = ui.load_sample(name)
        if not isinstance(trace, str) and trace["steps"]:
            out[name] = trace
    return out or {"toy": fg.toy_trace()}


# ---------------------------------------------------------------- exercises


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
    samples = _samples()
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
        f"Share this set with a class: the address bar holds it (…/exercises?trace={ui.md_escape(name)}&seed={seed}). "
        "Every question is about a real step of the trace; the link under each answer opens that step."
    )
    for i, (q, key) in enumerate(zip(quiz, keys, strict=True)):
        with st.container(border=True):
            _question(i, q, key, name if name != "toy" else None)


def _question(i: int, q: ex.Question, key: str, sample: str | None) -> None:
    st.markdown(f"**{i + 1}. {ui.md_escape(q.title)}**")
    st.markdown(ui.md_escape(q.text))
    if q.details:
        st.markdown("\n".join(f"- {ui.md_escape(line)}" for line in q.details))
    widget = f"exercise_q_{key}"
    st.radio(
        "Your answer",
        list(range(len(q.options))),
        index=None,
        format_func=lambda j: ui.md_escape(q.options[j]),
        key=widget,
        label_visibility="collapsed",
    )
    st.button("Check", key=f"exercise_check_{key}", on_click=_check, args=(key, widget, q))
    if st.session_state.get(f"{widget}_nochoice"):
        st.warning("Pick an answer first.")
    answer = _answers().get(key)
    if answer is None:
        return
    right = ui.md_escape(q.options[q.answer])
    if answer["correct"]:
        st.success(f"Correct. {ui.md_escape(q.explanation)}")
    else:
        st.error(f"Not quite: the answer is “{right}”. {ui.md_escape(q.explanation)}")
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


# ---------------------------------------------------------------- the speedup lab


def _measured_points() -> list[theory.Measured]:
    points = [theory.measure(t, n) for n, t in _samples().items() if n != "toy"]
    for run in (st.session_state.get("sweep") or {}).get("runs", []):
        points.append(theory.measure(run["trace"], f"sweep {run['label']}"))
    return [p for p in points if p.alpha is not None]  # a run that drafted nothing has no α to place


def _take_from(points: dict[str, theory.Measured]) -> None:
    p = points.get(st.session_state.get("lab_from") or "")
    if p is None:
        return
    st.session_state["lab_alpha"] = round(min(max(p.alpha, 0.0), 0.99), 2)
    st.session_state["lab_gamma"] = min(max(p.gamma, 1), 12)
    if p.c is not None:
        st.session_state["lab_c"] = round(min(max(p.c, 0.0), 0.5), 3)


def speedup_lab() -> None:
    st.markdown(
        "Drag **α** (how often the evaluation model accepts a draft), **γ** (drafts per step) and **c** (the cost "
        "of one draft token as a share of one evaluation pass) and read what the model predicts. "
        "[Maths and words](#glossary)"
    )
    points = _measured_points()
    state = st.session_state
    state.setdefault("lab_alpha", 0.7)
    state.setdefault("lab_gamma", 4)
    state.setdefault("lab_c", 0.05)
    a_col, g_col, c_col, from_col = st.columns([3, 3, 3, 2])
    alpha = a_col.slider("α (acceptance rate)", 0.0, 0.99, step=0.01, key="lab_alpha")
    gamma = g_col.slider("γ (drafts per step)", 1, 12, key="lab_gamma")
    c = c_col.slider("c (draft cost ratio)", 0.0, 0.5, step=0.001, format="%.3f", key="lab_c")
    by_name = {p.name: p for p in points}
    from_col.selectbox(
        "…or take them from",
        ["", *by_name],
        key="lab_from",
        format_func=lambda n: n or "a trace",
        on_change=_take_from,
        args=(by_name,),
        help="Set α, γ and c to what a sample trace (or a run of your sweep) measured.",
    )
    e_tok = theory.expected_tokens(alpha, gamma)
    s_now = theory.speedup(alpha, gamma, c)
    g_best, s_best = theory.best_gamma(alpha, c, 12)
    cols = st.columns(4)
    cols[0].metric("expected tokens per step", f"{e_tok:.2f}")
    cols[1].metric("expected speedup", f"{s_now:.2f}×")
    cols[2].metric("best γ", str(g_best), f"{s_best:.2f}×", delta_color="off", delta_arrow="off")
    cols[3].metric(
        "break-even c",
        f"{theory.crossover_c(alpha, gamma):.3f}",
        help="above this c, γ = your γ is slower than the evaluation model alone",
    )
    left, right = st.columns(2, gap="large")
    with left:
        st.latex(r"E[\text{tokens per step}] = \frac{1-\alpha^{\gamma+1}}{1-\alpha}")
        ui._plot(fl.tokens_figure(alpha, gamma, points), "lab_tokens")
    with right:
        st.latex(r"\text{speedup} = \frac{1-\alpha^{\gamma+1}}{(1-\alpha)(\gamma c+1)}")
        ui._plot(fl.speedup_figure(alpha, c, gamma), "lab_speedup")
    if points:
        with st.expander("The measured points (sample traces and your sweep)"):
            st.dataframe(_points_table(points), hide_index=True)
    st.subheader("A fixed verification budget", anchor="budget")
    b1, b2 = st.columns([1, 2])
    budget = int(b1.number_input("Budget", 1, 100_000, 100, 10, key="lab_budget"))
    unit = b2.radio(
        "counted in",
        ["passes", "positions", "compute"],
        format_func=fl.BUDGET_WORDS.__getitem__,
        horizontal=True,
        key="lab_budget_unit",
    )
    ui._plot(fl.budget_figure(alpha, budget, unit, c), "lab_budget_fig")
    st.caption(
        "Passes: each evaluation pass yields the expected tokens per step, so a longer γ always helps, less and less. "
        "Positions: a pass over γ drafts scores γ + 1 positions, so the budget buys fewer passes; the evaluation model "
        "alone would make one token per position. Compute: a step also pays γ·c for drafting, so the best γ is the "
        "speedup curve's."
    )
    st.divider()
    tree_sizing_section()
    st.divider()
    st.subheader("A live sweep on a real model pair", anchor="sweep")
    settings = sweep_form()
    # a flag, not the button's return value: the flag survives a rerun (see ui._request)
    st.button("Run the sweep", icon=":material/play_arrow:", type="primary", key="sweep_run", on_click=_raise_sweep)
    if st.session_state.pop("sweep_go", False):
        run_sweep(settings)
    show_sweep()
    st.divider()
    glossary()


def tree_sizing_section() -> None:
    """What a verification pass costs on this machine, and the draft tree sized to it (`--tree auto`)."""
    from specviz import figures_tree as ftree

    st.subheader("Draft trees sized to this machine", anchor="tree-sizing")
    st.markdown(
        "A tree drafts several candidates per depth and the evaluation model scores them all in one pass. Whether "
        "that pays depends on what a pass over more positions costs *here*: specviz times passes over 1 to 64 "
        "positions, measures which nodes the evaluation model accepts on short calibration texts, and picks the "
        "branching and node budget with the most tokens per second (Sequoia's hardware-aware idea)."
    )
    st.button(
        "Measure this machine (default pair)",
        icon=":material/speed:",
        key="lab_size_tree",
        on_click=ui._request,
        args=("lab_size_go",),
        help="About half a minute on a small CPU; one model run at a time on the server.",
    )
    if st.session_state.pop("lab_size_go", False):
        note = st.empty()
        with ui._generation_slot(note):
            try:
                from specviz.record import make_drafter

                with st.spinner("Timing evaluation passes and a calibration decode…"):
                    target, draft = live.load_models(ui.DEFAULT, ui.DEFAULT)
                    live.sized_config(live.LiveSettings(tree="auto"), target, make_drafter(target, draft))
            except Exception as exc:  # the UI boundary: whatever a model load raises
                st.error(f"Could not measure: {ui.md_escape(f'{type(exc).__name__}: {exc}'[:600])}")
    sized = live.SIZINGS.get((ui.DEFAULT, ui.DEFAULT)) or next(iter(live.SIZINGS.values()), None)
    if sized is None:
        st.caption(
            "Not measured in this server process yet: press the button, or run the Live page with a tree sized "
            "to this machine."
        )
        return
    auto = sized[1]["tree"]["auto"]
    ui._plot(ftree.sizing_figure(auto), "lab_tree_sizing")
    st.caption(
        f"Chosen: {ui.md_escape(auto['chosen'])}, from {auto['calibration_steps']} calibration steps; drafting costs "
        f"{auto['draft_ms_per_level']:.1f} ms per depth. Expected speeds use the calibration text's acceptance "
        "(greedy): held-out text usually accepts less, so measure the real speedup with a live run."
    )


def _points_table(points: list[theory.Measured]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "trace": p.name,
                "γ": p.gamma,
                "drafts per step": round(p.mean_drafts, 2),
                "α": round(p.alpha, 3),
                "tokens per step": round(p.tokens_per_step, 2),
                "theory": round(p.predicted_tokens_per_step, 2),
                "c": None if p.c is None else round(p.c, 4),
                "ideal speedup": None if p.predicted_speedup is None else round(p.predicted_speedup, 2),
                "ms per token": None if p.ms_per_token is None else round(p.ms_per_token, 1),
            }
            for p in points
        ]
    )


# ---------------------------------------------------------------- the live sweep


@dataclass(frozen=True)
class SweepSettings:
    target: str = ui.DEFAULT
    draft: str = ui.DEFAULT  # a model spec, or "ngram"
    prompt: str = "Explain speculative decoding to a student in three sentences."
    chat: bool = True
    temperature: float = 0.7
    seed: int = 0
    max_new_tokens: int = 48
    max_gamma: int = 8
    taus: tuple[float, ...] = (0.1, 0.3, 0.6)
    adaptive: bool = True

    def runs(self) -> list[tuple[str, DecodeConfig]]:
        """(label, config) for every run: γ = 1..max_gamma, the lossy rule at γ = 4, the adaptive policy."""
        from specviz.decoder import DecodeConfig, GammaPolicy
        from specviz.rules import make_rule
        from specviz.warp import Sampling

        samp = Sampling(self.temperature)
        lossless = "greedy" if self.temperature == 0 else "sampling"
        out = [
            (
                f"γ = {g}",
                DecodeConfig(
                    gamma=g, rule=make_rule(lossless), sampling=samp, max_new_tokens=self.max_new_tokens, seed=self.seed
                ),
            )
            for g in range(1, self.max_gamma + 1)
        ]
        g_tau = min(4, self.max_gamma)
        out += [
            (
                f"threshold τ = {t:g}, γ = {g_tau}",
                DecodeConfig(
                    gamma=g_tau,
                    rule=make_rule("threshold", tau=t),
                    sampling=samp,
                    max_new_tokens=self.max_new_tokens,
                    seed=self.seed,
                ),
            )
            for t in self.taus
        ]
        if self.adaptive:
            policy = GammaPolicy(start=min(4, self.max_gamma))
            out.append(
                (
                    f"adaptive γ ≤ {self.max_gamma}",
                    DecodeConfig(
                        gamma=self.max_gamma,
                        rule=make_rule(lossless),
                        sampling=samp,
                        max_new_tokens=self.max_new_tokens,
                        seed=self.seed,
                        gamma_policy=policy,
                    ),
                )
            )
        return out


def _raise_sweep() -> None:
    st.session_state["sweep_go"] = True


def sweep_form() -> SweepSettings:
    # like the live page: prompt lookup until the default draft model is installed
    d = SweepSettings(draft=ui.DEFAULT if live.default_draft_ready() else "ngram")
    with st.expander("Sweep settings", expanded=st.session_state.get("sweep") is None):
        m1, m2 = st.columns(2)
        target = m1.text_input(
            "Evaluation (target) model", d.target, key="sweep_target", help="hub id, directory, .gguf or 'default'"
        )
        draft = m2.text_input(
            "Draft model",
            d.draft,
            key="sweep_draft",
            help="hub id, directory, .gguf, 'default', 'feature', 'standalone' or 'ngram' (prompt lookup)",
        )
        prompt = st.text_area("Prompt (one prompt for every run)", d.prompt, key="sweep_prompt", height=80)
        s1, s2, s3, s4 = st.columns(4)
        temperature = s1.slider("Temperature", 0.0, 1.5, d.temperature, 0.05, key="sweep_temperature")
        max_new = s2.number_input("Max new tokens", 4, 512, d.max_new_tokens, key="sweep_max_new")
        max_gamma = s3.slider("γ from 1 to", 1, 12, d.max_gamma, key="sweep_max_gamma")
        seed = s4.number_input("Seed", 0, 2**31 - 1, d.seed, key="sweep_seed")
        o1, o2, o3 = st.columns(3)
        chat = o1.checkbox("Chat template", d.chat, key="sweep_chat")
        lossy = o2.checkbox("Also the lossy rule (τ = 0.1, 0.3, 0.6)", True, key="sweep_lossy")
        adaptive = o3.checkbox("Also the adaptive γ policy", d.adaptive, key="sweep_adaptive")
    return SweepSettings(
        target=target.strip(),
        draft=draft.strip(),
        prompt=prompt,
        chat=chat,
        temperature=float(temperature),
        seed=int(seed),
        max_new_tokens=int(max_new),
        max_gamma=int(max_gamma),
        taus=d.taus if lossy else (),
        adaptive=adaptive,
    )


def run_sweep(s: SweepSettings) -> None:
    """The evaluation model alone, then every run of the sweep on one prompt; results to session state.

    Like the live page: the models load and run inside the process-wide generation slot, and the
    runs end early when the tab closes or the per-run time limit passes (live.RunControl).
    """
    from specviz.decoder import target_decode
    from specviz.record import Recording, make_drafter

    if not s.prompt.strip():
        st.error("The prompt is empty: write something for the model to continue.")
        return
    try:
        runs = s.runs()
    except ValueError as exc:
        st.error(f"Check the settings: {ui.md_escape(str(exc))}")
        return
    note = st.empty()
    progress = st.progress(0.0, text="waiting for the model…")
    total = len(runs) + 1
    out: dict[str, Any] = {"settings": asdict(s), "runs": []}
    control = ui.run_control()
    with ui._generation_slot(note):
        try:
            with st.spinner(f"Loading {ui.md_escape(s.target)} ← {ui.md_escape(s.draft)} (once per server process)…"):
                target, draft = live.load_models(s.target, s.draft)
            prompt_ids = target.encode(s.prompt, s.chat)
        except Exception as exc:  # the UI boundary: whatever a model load or the tokenizer raises
            st.error(f"Could not load the models: {ui.md_escape(f'{type(exc).__name__}: {exc}'[:600])}")
            return
        progress.progress(0.0, text=f"run 1 of {total}: the evaluation model alone")
        t0 = time.perf_counter()
        sampling, stop = runs[0][1].sampling, control.should_stop
        ids = list(target_decode(target, prompt_ids, sampling, s.max_new_tokens, s.seed, should_stop=stop))
        out["baseline"] = {"token_ids": ids, "seconds": time.perf_counter() - t0, "prompt_ids": prompt_ids}
        for i, (label, cfg) in enumerate(runs, start=2):
            if control.should_stop():
                break
            progress.progress((i - 1) / total, text=f"run {i} of {total}: {label}")
            rec = Recording(target, make_drafter(target, draft), s.prompt, cfg, chat=s.chat, should_stop=stop)
            t0 = time.perf_counter()
            trace = rec.run()
            out["runs"].append({"label": label, "trace": trace, "seconds": time.perf_counter() - t0})
    if out["runs"]:  # the baseline is the target-only output for every run's settings: compare can use it
        _refs()[_ref_key(out["runs"][0]["trace"])] = {"token_ids": ids, "tokens": [target.token_text(i) for i in ids]}
    if control.reason is not None:
        out["stopped"] = control.reason
    progress.progress(1.0, text=f"done: {len(out['runs']) + 1} runs")
    st.session_state["sweep"] = out


def sweep_rows(sweep: dict[str, Any]) -> tuple[list[fl.SweepRow], float | None]:
    base = sweep.get("baseline") or {}
    base_tps = len(base.get("token_ids", [])) / base["seconds"] if base.get("seconds") else None
    rows = []
    for run in sweep["runs"]:
        trace: Trace = run["trace"]
        m = theory.measure(trace, run["label"])
        tokens = len(trace["output"]["token_ids"])
        tps = tokens / run["seconds"] if run["seconds"] > 0 else None
        rows.append(
            fl.SweepRow(
                label=run["label"],
                gamma=m.gamma,
                rule=str(trace["meta"]["rule"]["name"]),
                tokens=tokens,
                steps=m.steps,
                seconds=float(run["seconds"]),
                alpha=m.alpha,
                c=m.c,
                tokens_per_step=m.tokens_per_step,
                predicted_tokens_per_step=m.predicted_tokens_per_step,
                predicted_speedup=m.predicted_speedup,
                measured_speedup=tps / base_tps if tps and base_tps else None,
            )
        )
    return rows, base_tps


def _sweep_zip(sweep: dict[str, Any], rows: list[fl.SweepRow]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i, run in enumerate(sweep["runs"]):
            z.writestr(f"run-{i:02d}.json", dumps(run["trace"]))
        z.writestr(
            "sweep.json",
            json.dumps(
                {"settings": sweep["settings"], "baseline": sweep.get("baseline"), "rows": [asdict(r) for r in rows]},
                indent=1,
            ),
        )
    return buf.getvalue()


def show_sweep() -> None:
    sweep = st.session_state.get("sweep")
    if sweep is None:
        st.info(
            "Run the sweep to measure γ = 1…8 (and the lossy rule, and the adaptive policy) on one prompt with the "
            "loaded model pair, against the evaluation model alone. On a laptop CPU it takes about a minute."
        )
        return
    rows, base_tps = sweep_rows(sweep)
    if sweep.get("stopped"):
        st.warning(f"The sweep ended early ({ui.md_escape(str(sweep['stopped']))}); the finished runs are shown.")
    if base_tps:
        st.caption(f"The evaluation model alone: {base_tps:.1f} tokens per second on this machine.")
    ui._plot(fl.sweep_figure(rows, base_tps), "sweep_figure")
    table = pd.DataFrame(
        [
            {
                "run": f"run {i + 1}: {r.label}",
                "tokens": r.tokens,
                "steps": r.steps,
                "α": None if r.alpha is None else round(r.alpha, 3),
                "tokens per step": round(r.tokens_per_step, 2),
                "predicted": None if r.predicted_tokens_per_step is None else round(r.predicted_tokens_per_step, 2),
                "tokens/s": round(r.tokens_per_second, 1),
                "measured speedup": None if r.measured_speedup is None else round(r.measured_speedup, 2),
                "predicted speedup": None if r.predicted_speedup is None else round(r.predicted_speedup, 2),
            }
            for i, r in enumerate(rows)
        ]
    )
    st.dataframe(table, hide_index=True, column_config={"run": st.column_config.TextColumn(width="large")})
    st.download_button(
        "Download the sweep's traces (zip)",
        _sweep_zip(sweep, rows),
        file_name="specviz-sweep.zip",
        mime="application/zip",
        icon=":material/download:",
        key="sweep_download",
    )
    st.caption(
        "Predicted values use each run's own α and measured c. Where measured and predicted disagree, the model's "
        "assumptions are what to question: α is not the same at every position, and time is not only passes. "
        "Open any two runs side by side on the Compare page."
    )


# ---------------------------------------------------------------- compare


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
    out: dict[str, tuple[str, Trace]] = {f"sample:{n}": (f"Sample · {n}", t) for n, t in _samples().items()}
    for key, item in st.session_state.get("traces", {}).items():  # ui's store: this session's runs and uploads
        out[key] = (str(item["label"]), item["trace"])
    for i, run in enumerate((st.session_state.get("sweep") or {}).get("runs", [])):
        out[f"sweep:{i}"] = (f"Sweep · {run['label']}", run["trace"])
    return out


def _ref_key(trace: Trace) -> str:
    """What fixes the evaluation model's own output: model, prompt, warping, seed and budget."""
    m = trace.get("meta", {})
    samp = m.get("sampling", {})
    parts = [m.get("target", {}).get("name"), trace["prompt"]["token_ids"], m.get("seed"), m.get("max_new_tokens")]
    return json.dumps([*parts, samp.get("temperature"), samp.get("top_k"), samp.get("top_p")])


def _refs() -> dict[str, dict[str, list[Any]]]:
    """The evaluation model alone, by _ref_key: {"token_ids", "tokens"} (from a sweep or the compare page)."""
    return st.session_state.setdefault("compare_refs", {})


def _reference_form(trace: Trace) -> None:
    with st.expander("Run the evaluation model alone on this prompt (the target-only output)"):
        st.caption(
            "Decodes trace A's prompt with the evaluation model only, with A's temperature, top-k, top-p, seed and "
            "token budget. At temperature 0 this is the text every lossless run must reproduce."
        )
        spec = st.text_input(
            "Evaluation (target) model",
            ui.DEFAULT,
            key="compare_ref_target",
            help="the model the trace was recorded with: hub id, directory, .gguf or 'default'",
        )
        st.button("Run it", key="compare_ref_run", on_click=_raise, args=("compare_ref_go",))
    if st.session_state.pop("compare_ref_go", False):
        _run_reference(spec.strip(), trace)


def _raise(flag: str) -> None:
    st.session_state[flag] = True


def _run_reference(spec: str, trace: Trace) -> None:
    from specviz.decoder import target_decode
    from specviz.warp import Sampling

    m = trace["meta"]
    samp = m.get("sampling", {})
    control = ui.run_control()
    with ui._generation_slot(st.empty()):
        try:
            with st.spinner(f"Loading {ui.md_escape(spec)} (once per server process)…"):
                target, _ = live.load_models(spec, "ngram")
            want = str(m.get("target", {}).get("name", ""))
            if want and target.name != want:
                st.error(
                    f"Trace A was recorded with {ui.md_escape(want)}, but {ui.md_escape(spec)} is "
                    f"{ui.md_escape(target.name)}: its output would not be this trace's reference."
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
            st.error(f"Could not run the evaluation model: {ui.md_escape(f'{type(exc).__name__}: {exc}'[:600])}")
            return
    _refs()[_ref_key(trace)] = {"token_ids": ids, "tokens": [target.token_text(i) for i in ids]}
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
    refs = _refs()
    ref_a, ref_b = refs.get(_ref_key(a)), refs.get(_ref_key(b))
    where = fl.divergence(ids_a, ids_b)
    ca, cb = st.columns(2)
    for col, side, label, t, ref in ((ca, "a", la, a, ref_a), (cb, "b", lb, b, ref_b)):
        with col:
            _compare_card(side, label, t, None if ref is None else ref["token_ids"])
    prov_a, prov_b = fg.provenance(a), fg.provenance(b)
    rows: list[tuple[str, list[fg.OutTok]]] = [("A · " + la, prov_a), ("B · " + lb, prov_b)]
    reference = ref_a or ref_b
    if reference is None:
        marks: list[int | None] = [None, where]
    else:  # both rows measured against the evaluation model alone (where it is the reference for their settings)
        marks = [None] + [
            fl.divergence(ids, reference["token_ids"]) if ref is reference else None
            for ids, ref in ((ids_a, ref_a), (ids_b, ref_b))
        ]
    if where is None:
        st.success("The two outputs are identical, token for token.")
    else:
        ta = ui.md_escape(fg.visible(prov_a[where].token)) if where < len(prov_a) else "the end"
        tb = ui.md_escape(fg.visible(prov_b[where].token)) if where < len(prov_b) else "the end"
        agree = f"{where} token{'s' if where != 1 else ''}"
        st.info(f"The outputs agree for {agree}; at position {where} A has “{ta}” and B has “{tb}”.")
    longest = max(len(prov_a), len(prov_b), 0 if reference is None else len(reference["tokens"]))
    width = fl.COMPARE_WIDTH
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
    ui._plot(fl.compare_timeline_figure(rows, start, width, marks, ref_row), "compare_timeline")
    if reference is None:
        _reference_form(a)
    ui._plot(fl.compare_progress_figure([("A · " + la, a), ("B · " + lb, b)]), "compare_progress")
    st.caption(
        "At temperature 0 a lossless rule (sampling or greedy) reproduces the evaluation model's own text exactly, so a "
        "departure there is a bug or a lossy rule. Above temperature 0 even two lossless runs differ as text — the "
        "random numbers are used differently — and the guarantee is about the distribution; compare the mean p of "
        "accepted drafts instead: a lossy rule accepts tokens the evaluation model finds unlikely."
    )
    engine_ui.engine_section("compare", [("A · " + la, a), ("B · " + lb, b)])


def _compare_card(side: str, label: str, trace: Trace, ref: list[int] | None) -> None:
    m = theory.measure(trace, label)
    meta = trace["meta"]
    rule = meta.get("rule", {})
    st.markdown(f"**{ui.md_escape(label)}**")
    st.caption(ui._meta_line(trace))
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
    st.caption(f"Rule {ui.md_escape(str(rule.get('name')))}: {'lossless' if rule.get('lossless', True) else 'lossy'}.")
    if ref is not None:
        d = fl.divergence(trace["output"]["token_ids"], ref)
        st.caption(
            "Same text as the evaluation model alone."
            if d is None
            else f"Departs from the evaluation model alone at position {d}."
        )
    st.download_button(
        "Printable summary (HTML)",
        fl.summary_html(trace, label),
        file_name="specviz-summary.html",
        mime="text/html",
        icon=":material/print:",
        key=f"compare_print_{side}",
        help="A one-page summary to print or save as PDF from the browser.",
    )


# ---------------------------------------------------------------- glossary and the maths

GLOSSARY_TITLES: dict[str, str] = {
    "speculative-decoding-step": "a speculative decoding step",
    "draft-model": "draft model",
    "evaluation-model": "evaluation model",
    "gamma": "γ (draft length)",
    "acceptance-rule": "acceptance rule",
    "consecutively-accepted-tokens": "consecutively accepted tokens",
    "post-acceptance-token": "post-acceptance token",
    "residual-distribution": "residual distribution",
    "bonus-token": "bonus token",
    "lossless": "lossless and lossy",
    "expected-tokens-per-step": "expected tokens per step",
    "expected-speedup": "expected speedup and the cost ratio c",
    "draft-tree": "draft tree and tree attention",
}

_GLOSSARY: dict[str, tuple[str, str | None]] = {
    "speculative-decoding-step": (
        "One step: the draft proposes γ tokens; the evaluation model scores them all in one forward pass; the drafts "
        "are tested left to right until the first rejection; the evaluation model adds one token of its own; the "
        "accepted drafts and that token are appended. Between 1 and γ + 1 tokens per evaluation pass.",
        None,
    ),
    "draft-model": (
        "The small, fast model (or prompt lookup) that proposes tokens, with probabilities **q**. Also: drafter, "
        "assistant model, approximation model, proposer.",
        r"q(x \mid \text{prefix})",
    ),
    "evaluation-model": (
        "The large model whose output we want, with probabilities **p**. Also: target model, verifier, main model, "
        "the oracle.",
        r"p(x \mid \text{prefix})",
    ),
    "gamma": (
        "γ, the number of drafts per step. Also: K, lookahead, draft length, num_assistant_tokens (transformers). "
        "An adaptive policy changes it as it goes: +2 after a fully accepted step, −1 otherwise.",
        None,
    ),
    "acceptance-rule": (
        "How a draft x is judged. Speculative sampling accepts when a uniform draw r falls below min(1, p/q); "
        "greedy accepts the evaluation model's argmax; threshold accepts p/q ≥ τ; typical accepts p above a cutoff.",
        r"\text{accept } x \iff r < \min\!\left(1, \frac{p(x)}{q(x)}\right),\quad r \sim U[0, 1)",
    ),
    "consecutively-accepted-tokens": (
        "n_accepted: the number of drafts accepted in a row from the first one. The first rejection ends the run; "
        "later drafts are discarded even if they would pass.",
        r"n = \min\{\, j : \text{draft } j+1 \text{ rejected} \,\} \le \gamma",
    ),
    "post-acceptance-token": (
        "The token the evaluation model generates itself at position i + n + 1, right after the accepted drafts: a "
        "correction after a rejection, or a bonus token when all γ drafts passed. Every step makes one.",
        None,
    ),
    "residual-distribution": (
        "After a rejection the correction is drawn from the residual: where p exceeds q, renormalised. This is what "
        "makes speculative sampling produce exactly p overall.",
        r"p'(x) = \frac{\max(0,\, p(x) - q(x))}{\sum_{x'} \max(0,\, p(x') - q(x'))}",
    ),
    "bonus-token": (
        "When every draft is accepted, the pass has already computed p at position i + γ + 1: one more token is drawn "
        "from it for free.",
        r"x_{\gamma+1} \sim p(\cdot \mid \text{prefix}, x_1, \dots, x_\gamma)",
    ),
    "lossless": (
        "A rule is lossless when the output follows the evaluation model's distribution exactly (sampling; greedy at "
        "T = 0). Threshold and typical are lossy: faster, but the text changes — the “fast but wrong” regression.",
        None,
    ),
    "expected-tokens-per-step": (
        "If each draft is accepted independently with probability α, a step yields on average",
        r"E[\text{tokens per step}] = \sum_{j=0}^{\gamma} \alpha^j = \frac{1-\alpha^{\gamma+1}}{1-\alpha}",
    ),
    "expected-speedup": (
        "With c the time of one draft token as a share of one evaluation pass, a step costs γc + 1 passes, so against "
        "the evaluation model alone (one token per pass). The best γ maximises it.",
        r"\text{speedup} = \frac{1-\alpha^{\gamma+1}}{(1-\alpha)(\gamma c+1)}",
    ),
    "draft-tree": (
        "Instead of one line of γ drafts, the draft proposes several candidates per depth: a tree of nodes, each with "
        "a parent. One pass of the evaluation model scores every node; the **tree attention mask** lets each node see "
        "the context and its own ancestors only, so each branch is scored as if it were alone. Verification walks down "
        "from the root: at each node its children are tested in turn, the first accepted one continues the path, and "
        "when all are rejected the evaluation model draws its own token. Under speculative sampling a sibling tried "
        "after a rejection is tested against the residual, with q losing the rejected token (SpecInfer, multi-round "
        "speculative sampling), which keeps the output exactly p.",
        r"\text{node } j \text{ attends to } i \iff i \in \text{context} \cup \text{ancestors}(j) \cup \{j\}",
    ),
}


def glossary() -> None:
    st.header("Glossary and the maths", anchor="glossary")
    st.caption("The textbook's words, with the synonyms used elsewhere. Every exercise links to its entry here.")
    for anchor in GLOSSARY_TITLES:
        title = GLOSSARY_TITLES[anchor]  # "γ (draft length)" keeps its lower-case γ: Γ is another symbol
        st.subheader(title[:1].upper() + title[1:] if title[:1].isascii() else title, anchor=anchor)
        glossary_entry(anchor)


def glossary_entry(anchor: str) -> None:
    """One entry's words and formula (constants, never trace text)."""
    text, formula = _GLOSSARY[anchor]
    st.markdown(text)
    if formula:
        st.latex(formula)
