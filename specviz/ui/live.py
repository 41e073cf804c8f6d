"""Live decoding (pages/live.py): a run in the decode worker followed from the page (its settings form:
specviz.ui.live_form), Stop, and the result: its speed verdict against the evaluation model alone (specviz.run.live says
it), the outputs with ■ for an end of turn, the timeline's last steps, the download. Models load
once per server (specviz.run.live) and runs take turns (specviz.ui.runs)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import streamlit as st

from specviz import figures as fg
from specviz.figures import Kind, literal
from specviz.run import live, verdict
from specviz.teach.player import TIMELINE_ROWS
from specviz.trace import Trace, dumps, finish, rate, summarize, undefined_words
from specviz.ui.common import legend_md, md_escape, plot, raise_flag, tokens_md
from specviz.ui.runs import generation_slot, run_control
from specviz.ui.traces import add_trace, session_traces

if TYPE_CHECKING:  # torch and transformers load only when the live page needs them
    from specviz.models.lm import CausalLM


__all__ = [
    "LiveSettings",
    "active_runs",
    "output_md",
    "readable_text",
    "recover_partial",
    "run_button",
    "run_live",
    "show_live_result",
    "timeline_note",
    "while_running_words",
]


LiveSettings = live.LiveSettings  # the page's settings: defined below the UI, where bench can use them too
MAX_RUNS = 5


# While a live run decodes, the browser should not compete with it for the CPU (an instructor's laptop
# runs both): Streamlit's animated "running" indicator and CSS transitions repaint continuously.
QUIET_CSS = """<style>
[data-testid="stStatusWidget"] { display: none !important; }
.stApp *, .stApp *::before, .stApp *::after { animation: none !important; transition: none !important; }
</style>"""


_ACTIVE_RUNS: dict[int, live.RunControl] = {}  # the runs in progress in this process (at most one: the lock)
POLL_SECONDS = 1.0  # how often the page redraws a run's progress: text only, never a chart while it decodes
SETTLE_SECONDS = 1.0  # the browser redraws the page after Run; timing starts once it has (live.LiveRun)
TEXT_EVERY = 3  # polls between redraws of the growing text (docs/BENCHMARKS.md: what drawing costs here)


def active_runs() -> int:
    return len(_ACTIVE_RUNS)


def run_button() -> bool:
    """The Run button; True once after it was pressed."""
    st.button(
        "Run", icon=":material/play_arrow:", type="primary", key="live_run", on_click=raise_flag, args=("live_go",)
    )
    return bool(st.session_state.pop("live_go", False))


def _explain(exc: BaseException, s: LiveSettings) -> str:
    return literal(live.explain(exc, s), 800)


def run_live(s: LiveSettings) -> None:
    """Start a live run in the decode worker and follow it; the finished (or stopped) run goes to
    session state as live_result."""
    from specviz.drafters.factory import make_drafter
    from specviz.run.record import Recording

    try:
        cfg = s.config()
    except ValueError as exc:
        st.error(f"Check the settings: {md_escape(literal(str(exc)))}.")
        return
    if not s.prompt.strip():
        st.error("The prompt is empty: write something for the model to continue.")
        return
    if not s.target or not s.draft:
        st.error("Name both models (a hub id, a local directory, a .gguf file, or 'default').")
        return
    st.button(
        "Stop",
        icon=":material/stop:",
        key="live_stop",
        help="Stops after the current step and keeps the partial trace.",
    )
    st.html(QUIET_CSS)  # constant CSS like PRESENTATION_CSS, no trace or user text: the browser stays idle
    note, progress = st.empty(), st.progress(0.0, text="waiting for the model…")
    text_slot = st.empty()
    control = run_control()
    with generation_slot(note):  # loading takes the slot too: one pair in use at a time keeps memory bounded
        names = md_escape(literal(f"{s.target} ← {s.draft}", 200))
        try:
            with st.spinner(f"Loading {names} (once per server process; the first time takes a while)…"):
                target, draft = live.load_models(s.target, s.draft)
            if s.tree == "auto":
                with st.spinner("Sizing the draft tree to this machine (once per pair; about half a minute)…"):
                    cfg, tree_meta = live.sized_config(s, target, make_drafter(target, draft, s.lookup_below))
            else:
                tree_meta = {}
            rec = Recording(
                target,
                make_drafter(target, draft, s.lookup_below),
                s.prompt,
                cfg,
                chat=s.chat,
                should_stop=control.should_stop,
                extra_meta=tree_meta,
            )
            prompt_note = long_prompt_note(len(rec.prompt_ids), target)
            if prompt_note:
                st.warning(prompt_note)
        except Exception as exc:  # the UI boundary: a model that cannot load, no hub, OOM, a tokenizer mismatch
            live.free_memory()
            st.error(f"Could not load the models: {md_escape(_explain(exc, s))}")
            return
        run = live.LiveRun(rec, cfg, control, baseline=s.compare, settle_s=SETTLE_SECONDS)
        partial: dict[str, Any] = {
            "trace": rec.trace,
            "settings": asdict(s),
            "seconds": 0.0,
            "baseline": None,
            "prompt_note": prompt_note,
        }
        st.session_state["live_partial"] = partial
        _ACTIVE_RUNS[id(control)] = control
        try:
            run.start()
            _follow(run, progress, text_slot)
        finally:  # a Stop click or a closed tab lands here as an exception: stop the worker, wait one step
            if not run.done.is_set():
                control.stop.set()
            run.join()
            _ACTIVE_RUNS.pop(id(control), None)
            _collect(run, partial)
    st.session_state.pop("live_partial", None)
    if run.error is not None:
        partial["error"] = _explain(run.error, s)
        if live.is_oom(run.error):
            live.free_memory()
    if control.reason is not None and control.reason != "stop requested":
        partial["stop_note"] = control.reason
    _keep_result(partial, stopped=control.reason is not None)
    st.rerun()


def _collect(run: live.LiveRun, partial: dict[str, Any]) -> None:
    """What the result shows: the worker's timings (also in the trace's meta.timing) and the baseline."""
    timing = run.trace["meta"].get("timing") or run.timing()
    partial["seconds"] = timing["wall_ms"] / 1e3
    partial["timing"] = timing
    if run.baseline is not None:
        b = run.baseline
        keep = ("text", "tokens", "seconds", "token_ids", "end_tokens")
        partial["baseline"] = {k: b[k] for k in keep}


def _follow(run: live.LiveRun, progress: Any, text_slot: Any) -> None:
    """Redraw the run's progress every POLL_SECONDS until the worker is done: a progress bar and the
    growing text, the same way while the evaluation model runs alone (its own text then), so the
    browser does the same work while either is timed."""
    polls = 0
    while not run.done.wait(POLL_SECONDS):
        p, polls = run.progress(), polls + 1
        text = polls % TEXT_EVERY == 0  # the text less often: every browser redraw takes CPU from the models
        if p.phase == "baseline":
            n = p.baseline_tokens
            progress.progress(n / p.max_new_tokens, text=f"evaluation model alone: {fg.plural(n, 'token')}")
            if text:
                target = run.recording.target
                eos = set(target.eos_token_ids)
                ids = list(run.baseline_ids)
                text_slot.markdown(output_md([(target.token_text(i), "unevaluated", i in eos) for i in ids], limit=200))
        else:
            progress.progress(p.tokens / p.max_new_tokens, text=f"step {p.steps} · {fg.plural(p.tokens, 'token')}")
            if text:
                text_slot.markdown(output_md(_provenance(run.trace), limit=200))


def _provenance(trace: Trace) -> list[tuple[str, Kind, bool]]:
    """The output tokens with their provenance, and whether each is an end-of-sequence token."""
    eos = set(trace["meta"].get("eos_token_ids") or [])
    return [(t.token, t.kind, t.token_id in eos) for t in fg.provenance(trace)]


def output_md(tokens: list[tuple[str, Kind, bool]], limit: int | None = None) -> str:
    """Output tokens coloured by provenance (tokens_md), an end-of-sequence token read as the end mark
    (■, as in the plain text) instead of "<|im_end|>"; tokens: (text, kind, is end of sequence)."""
    md = tokens_md([(text, kind) for text, kind, end in tokens if not end], limit=limit)
    return md + md_escape(fg.END_MARK) if any(end for *_, end in tokens) else md


def readable_text(text: str, trace: Trace, end_tokens: Iterable[str] = ()) -> str:
    """Output text for people, as plain safe characters: an end-of-turn token read as the end mark
    (fg.readable_output). end_tokens: the evaluation model alone's own end tokens, which the
    speculative trace may never have logged (a sampled run that stopped at the token budget)."""
    text = fg.readable_output(text, trace)
    for tok in end_tokens:
        text = text.replace(tok, fg.END_MARK)
    return literal(text)


def long_prompt_note(n_tokens: int, target: CausalLM) -> str | None:
    """Words for a prompt long enough to slow every step, or longer than the model can read (else None)."""
    limit = getattr(target.model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and n_tokens >= limit:
        return (
            f"The prompt is {n_tokens:,} tokens, and this evaluation model reads at most {limit:,}: its output past "
            "that point is not meaningful. Shorten the prompt."
        )
    if n_tokens > 2000:
        return (
            f"The prompt is {n_tokens:,} tokens: every step attends over all of them, so decoding is slower than with "
            "a short prompt (on a laptop CPU, a few tokens per second)."
        )
    return None


def _keep_result(partial: dict[str, Any], stopped: bool) -> None:
    trace = partial["trace"]
    if "output" not in trace:
        finish(trace, "stopped")
    run_id = uuid.uuid4().hex[:8]
    runs = st.session_state.setdefault("run_count", 0) + 1
    st.session_state["run_count"] = runs
    m = trace["meta"]
    label = f"Your run {runs} · {literal(m['draft']['name'], 60)}, γ = {m['gamma']}, {m['rule']['name']}"
    add_trace(f"run:{run_id}", trace, label, MAX_RUNS)
    st.session_state["live_result"] = {"key": f"run:{run_id}", "number": runs, **partial, "stopped": stopped}


def recover_partial() -> None:
    """A run interrupted by Stop (or by leaving the page) left its partial trace: keep it as the result."""
    partial = st.session_state.pop("live_partial", None)
    if partial is not None:
        _keep_result(partial, stopped=True)


def _every(seconds: float) -> str:
    """ "every second", "every 3 seconds"."""
    return "every second" if seconds == 1 else f"every {seconds:g} seconds"


def while_running_words(baseline: bool) -> str:
    """What the page shows while a run goes on, exactly (the page's note before the first run)."""
    then = "; then the evaluation model runs alone, for comparison, and its text grows the same way" if baseline else ""
    return (
        f"Press Run to decode. While the models work, a bar counts steps and tokens {_every(POLL_SECONDS)} and the "
        f"text so far, coloured by where each token came from, appears {_every(POLL_SECONDS * TEXT_EVERY)}{then}. "
        "No chart is drawn while the models are timed (the browser would compete with them for the "
        "CPU): each step's drafts and decisions are shown when the run ends, on the timeline and in **Step through "
        "this run**."
    )


def timeline_note(start: int, stop: int, n: int) -> str | None:
    """The step page's words for a window of the steps ("Showing steps 23–46 of 47"); None when all are shown."""
    if stop - start >= n:
        return None
    return f"Showing steps {start}–{stop - 1} of {n}; **Step through this run** shows every step."


def _timed_words(tokens: int, model_ms: float | None, baseline: bool) -> str:
    """What the speeds on the Live page measure, in words (they are never the page's own time)."""
    model = (
        f" Model time alone (the decoder's draft + verify timings) gives {tokens / (model_ms / 1e3):.1f} tok/s."
        if model_ms
        else ""
    )
    how = (
        "What was timed: each decode loop in the server's worker thread, from its first step to its last (wall "
        f"time), while this page redrew its progress {_every(POLL_SECONDS)} and the text "
        f"{_every(POLL_SECONDS * TEXT_EVERY)}; drawing, sending to the browser and the browser itself are not in it.{model}"
    )
    if baseline:
        return how + " Both runs used the same models, dtype, settings and seed, one right after the other."
    return how + " Tick **Also run the evaluation model alone** to measure the speedup on this machine."


def _speed_story(trace: Trace) -> None:
    """The verdict in a box whose colour says faster (green), slower (orange) or neither (blue)."""
    numbers = verdict.speed_numbers(trace)
    words = verdict.speed_verdict(numbers)  # our own words and numbers only
    box = {"faster": st.success, "slower": st.warning}.get(numbers.outcome or "", st.info)
    box(words, icon=":material/speed:")
    if numbers.speedup is not None:
        st.caption(
            "One short run is noisy: on a 2-core server five runs of the defaults ranged 0.80–1.33× (median 1.18×) "
            "while `python -m specviz bench` gave 1.09× (docs/BENCHMARKS.md, 2026-12-05). Run it a few times, or "
            "use bench, before quoting a figure."
        )


def show_live_result(result: dict[str, Any]) -> None:
    """The finished (or stopped) run: its numbers, the speed verdict, the output beside the evaluation
    model's own, what was timed, the timeline of the last steps, the download."""
    trace: Trace = result["trace"]
    store = session_traces()
    if result["key"] not in store:
        store[result["key"]] = {"trace": trace, "label": "Your last run"}
    n, out = len(trace["steps"]), trace["output"]
    st.subheader(f"Result of run {result['number']}" if result.get("number") else "Result")
    if result.get("error"):
        st.error(f"Decoding stopped with an error; the steps before it are kept. {md_escape(result['error'])}")
    if result.get("prompt_note"):
        st.warning(result["prompt_note"])  # our own words and numbers only
    if result.get("stopped"):
        why = f" ({md_escape(result['stop_note'])})" if result.get("stop_note") else ""
        st.warning(f"Stopped after {n} step{'s' if n != 1 else ''}{why}; the partial trace is kept below.")
    if n == 0:
        return
    s = summarize(trace)
    tokens = len(out["token_ids"])
    speed = tokens / result["seconds"] if result.get("seconds") else None
    model_ms = (result.get("timing") or {}).get("model_ms")
    base = result.get("baseline")
    bspeed = base["tokens"] / base["seconds"] if base and base["seconds"] else None
    cols = st.columns(6 if base else 5)
    cols[0].metric("tokens", tokens)
    cols[1].metric("steps", n, help="one pass of the evaluation model each")
    cols[2].metric("tokens per step", f"{s['tokens_per_step']:.2f}")
    cols[3].metric("α (acceptance)", rate(s["alpha"]), help=undefined_words(s) or None)
    cols[4].metric(
        "speculative tok/s",  # a sixth of the page: the unit in the label, the value short enough to show whole
        f"{speed:.1f}" if speed else "—",
        help="tokens ÷ the wall time of the decode loop in the server's worker thread (the page's drawing is not in it)",
    )
    if base:
        cols[5].metric(
            "alone tok/s",
            f"{bspeed:.1f}" if bspeed else "—",
            help="the evaluation model alone, same settings and seed, timed the same way right after",
        )
    _speed_story(trace)
    if sized := verdict.sized_words(trace):
        st.caption(md_escape(sized))
    st.markdown(legend_md(("accepted", "correction", "bonus")))
    st.markdown(output_md(_provenance(trace)))
    if base:
        left, right = st.columns(2)
        with left:
            st.markdown(f"**Speculative output** · {speed or 0:.1f} tok/s")
            st.text(readable_text(out["text"], trace))
        with right:
            st.markdown(f"**Evaluation model alone** · {bspeed or 0:.1f} tok/s")
            st.text(readable_text(base["text"], trace, base.get("end_tokens", ())))
        if "token_ids" in base:
            st.caption(verdict.output_words(trace, base["token_ids"]))  # the numerics contract, in words
        else:
            same = base["text"] == out["text"]
            st.caption(f"The two outputs are {'identical' if same else 'different'}.")
    else:
        with st.expander("Output as plain text"):
            st.text(readable_text(out["text"], trace))
    st.caption(_timed_words(tokens, model_ms, bool(base)))
    start = max(0, n - TIMELINE_ROWS)
    note = timeline_note(start, n, n)
    if note:
        st.caption(note)
    plot(fg.timeline_figure(trace, start, n), "live_result_timeline")
    c1, c2 = st.columns(2)
    c1.download_button(
        "Download the trace (JSON)",
        dumps(trace),
        file_name=f"specviz-trace-{result['key'].removeprefix('run:')}.json",
        mime="application/json",
        key="live_download",
        icon=":material/download:",
    )
    c2.button(
        "Step through this run",
        icon=":material/manage_search:",
        key="live_to_replay",
        on_click=raise_flag,
        args=("live_goto_replay", result["key"]),
    )
    key = st.session_state.pop("live_goto_replay", None)
    if key is not None:
        st.session_state["trace_key"] = key
        st.query_params.clear()
        st.switch_page("pages/replay.py")
