"""The Speedup lab's live sweep (pages/speedup.py, "A live sweep on a real model pair"): γ = 1…max, the
lossy rule and the adaptive policy on one prompt with a real model pair, each against the evaluation
model alone, measured speedup beside the formula's prediction; the runs' traces as a zip.

Split from specviz.ui.speedup, which lays out the lab and calls `sweep_section`."""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from specviz.core import theory
from specviz.figures import speedup as fspeedup
from specviz.models.presets import DEFAULT, NGRAM, draft_ready
from specviz.run import live
from specviz.trace import Trace, dumps
from specviz.ui.common import md_escape, plot, raise_flag
from specviz.ui.runs import generation_slot, ref_key, reference_outputs, run_control

if TYPE_CHECKING:
    from specviz.core.decoder import DecodeConfig

__all__ = ["SweepSettings", "run_sweep", "sweep_rows", "sweep_section"]


def sweep_section() -> None:
    """The settings form, the Run button, the run itself when pressed, and the results."""
    settings = sweep_form()
    st.button(
        "Run the sweep",
        icon=":material/play_arrow:",
        type="primary",
        key="sweep_run",
        on_click=raise_flag,
        args=("sweep_go",),
    )
    if st.session_state.pop("sweep_go", False):
        run_sweep(settings)
    show_sweep()


@dataclass(frozen=True)
class SweepSettings:
    target: str = DEFAULT
    draft: str = DEFAULT  # a model spec, or "ngram"
    prompt: str = live.DEFAULT_PROMPT  # the Live page's: one the embedded model answers well
    chat: bool = True
    temperature: float = 0.7
    seed: int = 0
    max_new_tokens: int = 48
    max_gamma: int = 8
    taus: tuple[float, ...] = (0.1, 0.3, 0.6)
    adaptive: bool = True

    def runs(self) -> list[tuple[str, DecodeConfig]]:
        """(label, config) for every run: γ = 1..max_gamma, the lossy rule at γ = 4, the adaptive policy."""
        from specviz.core.decoder import build_config

        lossless = "greedy" if self.temperature == 0 else "sampling"
        common = dict(temperature=self.temperature, max_new_tokens=self.max_new_tokens, seed=self.seed)
        out = [(f"γ = {g}", build_config(gamma=g, rule=lossless, **common)) for g in range(1, self.max_gamma + 1)]
        g_tau = min(4, self.max_gamma)
        out += [
            (f"threshold τ = {t:g}, γ = {g_tau}", build_config(gamma=g_tau, rule="threshold", tau=t, **common))
            for t in self.taus
        ]
        if self.adaptive:  # the heuristic schedule from min(4, γ), γ its maximum
            out.append(
                (
                    f"adaptive γ ≤ {self.max_gamma}",
                    build_config(gamma=self.max_gamma, rule=lossless, adaptive=True, **common),
                )
            )
        return out


def sweep_form() -> SweepSettings:
    # like the live page: prompt lookup until the default draft model is installed
    d = SweepSettings(draft=DEFAULT if draft_ready() else NGRAM)
    with st.expander("Sweep settings", expanded=st.session_state.get("sweep") is None):
        m1, m2 = st.columns(2)
        target = m1.text_input(
            "Evaluation (target) model",
            d.target,
            key="sweep_target",
            persist_state="session",
            help="hub id, directory, .gguf or 'default'",
        )
        draft = m2.text_input(
            "Draft model",
            d.draft,
            key="sweep_draft",
            persist_state="session",
            help="hub id, directory, .gguf, 'default', 'feature', 'standalone' or 'ngram' (prompt lookup)",
        )
        prompt = st.text_area(
            "Prompt (one prompt for every run)", d.prompt, key="sweep_prompt", persist_state="session", height=80
        )
        s1, s2, s3, s4 = st.columns(4)
        temperature = s1.slider(
            "Temperature", 0.0, 1.5, d.temperature, 0.05, key="sweep_temperature", persist_state="session"
        )
        max_new = s2.number_input(
            "Max new tokens", 4, 512, d.max_new_tokens, key="sweep_max_new", persist_state="session"
        )
        max_gamma = s3.slider("γ from 1 to", 1, 12, d.max_gamma, key="sweep_max_gamma", persist_state="session")
        seed = s4.number_input("Seed", 0, 2**31 - 1, d.seed, key="sweep_seed", persist_state="session")
        o1, o2, o3 = st.columns(3)
        chat = o1.checkbox("Chat template", d.chat, key="sweep_chat", persist_state="session")
        lossy = o2.checkbox("Also the lossy rule (τ = 0.1, 0.3, 0.6)", True, key="sweep_lossy", persist_state="session")
        adaptive = o3.checkbox("Also the adaptive γ policy", d.adaptive, key="sweep_adaptive", persist_state="session")
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
    from specviz.core.decoder import target_decode
    from specviz.drafters.factory import make_drafter
    from specviz.run.record import Recording

    if not s.prompt.strip():
        st.error("The prompt is empty: write something for the model to continue.")
        return
    try:
        runs = s.runs()
    except ValueError as exc:
        st.error(f"Check the settings: {md_escape(str(exc))}")
        return
    note = st.empty()
    progress = st.progress(0.0, text="waiting for the model…")
    total = len(runs) + 1
    out: dict[str, Any] = {"settings": asdict(s), "runs": []}
    control = run_control()
    with generation_slot(note):
        try:
            with st.spinner(f"Loading {md_escape(s.target)} ← {md_escape(s.draft)} (once per server process)…"):
                target, draft = live.load_models(s.target, s.draft)
            prompt_ids = target.encode(s.prompt, s.chat)
        except Exception as exc:  # the UI boundary: whatever a model load or the tokenizer raises
            st.error(f"Could not load the models: {md_escape(f'{type(exc).__name__}: {exc}'[:600])}")
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
        reference_outputs()[ref_key(out["runs"][0]["trace"])] = {
            "token_ids": ids,
            "tokens": [target.token_text(i) for i in ids],
        }
    if control.reason is not None:
        out["stopped"] = control.reason
    progress.progress(1.0, text=f"done: {len(out['runs']) + 1} runs")
    st.session_state["sweep"] = out


def sweep_rows(sweep: dict[str, Any]) -> tuple[list[fspeedup.SweepRow], float | None]:
    base = sweep.get("baseline") or {}
    base_tps = len(base.get("token_ids", [])) / base["seconds"] if base.get("seconds") else None
    rows = []
    for run in sweep["runs"]:
        trace: Trace = run["trace"]
        m = theory.measure(trace, run["label"])
        tokens = len(trace["output"]["token_ids"])
        tps = tokens / run["seconds"] if run["seconds"] > 0 else None
        rows.append(
            fspeedup.SweepRow(
                label=run["label"],
                gamma=m.gamma,
                rule=str(trace["meta"]["rule"]["name"]),
                tokens=tokens,
                steps=m.steps,
                seconds=float(run["seconds"]),
                alpha=m.alpha,
                c=m.c,
                tokens_per_step=m.tokens_per_step,
                predicted_tokens_per_step=m.expected_tokens_per_step,
                predicted_speedup=m.ideal_speedup,
                measured_speedup=tps / base_tps if tps and base_tps else None,
            )
        )
    return rows, base_tps


def _sweep_zip(sweep: dict[str, Any], rows: list[fspeedup.SweepRow]) -> bytes:
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
        st.warning(f"The sweep ended early ({md_escape(str(sweep['stopped']))}); the finished runs are shown.")
    if base_tps:
        st.caption(f"The evaluation model alone: {base_tps:.1f} tokens per second on this machine.")
    plot(fspeedup.sweep_figure(rows, base_tps), "sweep_figure")
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
