"""The Speedup lab (pages/speedup.py): the theory's curves with measured traces on them, a fixed
verification budget, draft trees sized to this machine, a live sweep on a real model pair, and the
glossary (specviz.ui.glossary).

The lab opens on measured numbers, not round ones: α, γ and c of the most recently recorded chain
sample (`lab_defaults`), and beside the formula's ideal curve — which assumes a verification pass
over γ + 1 positions costs one one-token pass — the same formula with measured pass costs
(`pass_cost_sources`: this server's own measurement once taken, else docs/results/pass-cost.json)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from specviz.core import theory
from specviz.figures import speedup as fspeedup
from specviz.models.presets import DEFAULT, REPO_ROOT
from specviz.run import live, verdict
from specviz.ui.common import md_escape, plot, raise_flag
from specviz.ui.glossary import glossary
from specviz.ui.runs import generation_slot
from specviz.ui.speedup_sweep import sweep_section
from specviz.ui.traces import sample_traces

__all__ = [
    "PASS_COST_FILE",
    "lab_defaults",
    "lab_values",
    "pass_cost_sources",
    "speedup_lab",
]

# scripts/pass_cost.py --json-out writes it: {"context": n, "ms": {set-up: {positions: ms}}}, optionally "machine"
PASS_COST_FILE = REPO_ROOT / "docs" / "results" / "pass-cost.json"
PASS_COST_LOWBIT_FILE = REPO_ROOT / "docs" / "results" / "pass-cost-lowbit.json"  # `--lowbit`: torch int8/int4
# the same script on a CPU whose bf16 units make a one-token bf16 pass faster than float32 (a Zen 4 EPYC), where
# pass-cost.json's CPU (an AMX Xeon) is not: the two set-ups that tell it (float32, and bf16 as `auto` loads it),
# named with the CPU, beside the first file's
PASS_COST_OTHER_CPU = (REPO_ROOT / "docs" / "results" / "pass-cost-zen4.json", "Zen 4 EPYC")
OTHER_CPU_SETUPS = ("float32", "bfloat16 one-token rows")


def _measured_points() -> list[theory.Measured]:
    points = [theory.measure(t, n) for n, t in sample_traces().items() if n != "toy"]
    for run in (st.session_state.get("sweep") or {}).get("runs", []):
        points.append(theory.measure(run["trace"], f"sweep {run['label']}"))
    return [p for p in points if p.alpha is not None]  # a run that drafted nothing has no α to place


def lab_values(m: theory.Measured) -> tuple[float, int, float | None]:
    """(α, γ, c) of a trace's theory.measure as the lab's sliders take them: α to two decimals and
    c to three, as the Statistics page shows them, inside the sliders' ranges; c None when untimed."""
    alpha = round(min(max(float(m.alpha or 0.0), 0.0), 0.99), 2)
    c = None if m.c is None else round(min(max(m.c, 0.0), 0.5), 3)
    return alpha, min(max(m.gamma, 1), theory.MAX_GAMMA), c


def _take_from(points: dict[str, theory.Measured]) -> None:
    p = points.get(st.session_state.get("lab_from") or "")
    if p is None:
        return
    alpha, gamma, c = lab_values(p)
    st.session_state["lab_alpha"], st.session_state["lab_gamma"] = alpha, gamma
    if c is not None:
        st.session_state["lab_c"] = c


def _own_values() -> None:
    # a slider moved by hand: the values are no longer that trace's, so the box stops naming it
    st.session_state["lab_from"] = ""


def lab_defaults() -> tuple[str, theory.Measured] | None:
    """The sample the lab opens on: the most recently recorded chain sample whose α and c were measured
    (a tree's α pools several candidates per depth and does not fit the chain formula); None without one."""
    samples = sample_traces().items()
    chains = [(str(t["meta"].get("created", "")), n, t) for n, t in samples if n != "toy" and not t["meta"].get("tree")]
    for _, name, trace in sorted(chains, key=lambda x: x[:2], reverse=True):
        m = theory.measure(trace, name)
        if m.alpha is not None and m.c is not None:
            return name, m
    return None


@st.cache_data(show_spinner=False, max_entries=4)
def _read_pass_costs(path: str, mtime_ns: int) -> dict[str, Any] | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _costs_by_k(raw: Any) -> dict[int, float]:
    """{positions: ms} from JSON ({"1": 43.5, …}); {} where anything is malformed or not positive."""
    try:
        ms = {int(k): float(v) for k, v in dict(raw).items()}
    except (TypeError, ValueError):
        return {}
    return ms if ms and min(ms) >= 1 and all(v > 0 for v in ms.values()) else {}


def pass_cost_sources(dtype: str = "") -> dict[str, fspeedup.PassCosts]:
    """Measured pass costs the lab can draw the formula with, the preferred first: this server's own
    cost curve (measured below, in this process), then docs/results/pass-cost.json's set-ups (the one whose
    name starts with `dtype`, the default sample's, first), then torch's low-bit weights from
    docs/results/pass-cost-lowbit.json."""
    out: dict[str, fspeedup.PassCosts] = {}
    sized = live.latest_sizing(DEFAULT, DEFAULT)
    if sized is not None and (ms := _costs_by_k(sized[1]["tree"]["auto"].get("costs_ms") or {})):
        out["server"] = fspeedup.PassCosts(
            ms,
            "measured by this server (Draft trees sized to this machine, below)",
            f"this machine, {os.cpu_count()} CPUs",
        )
    out.update(_file_sources(PASS_COST_FILE, dtype))
    out.update(_file_sources(PASS_COST_OTHER_CPU[0], dtype, cpu=PASS_COST_OTHER_CPU[1], names=OTHER_CPU_SETUPS))
    # torch's low-bit weights were timed in a run of their own: only those set-ups come from it
    out.update(_file_sources(PASS_COST_LOWBIT_FILE, dtype, only="torch int"))
    return out


def _file_sources(
    path: Path, dtype: str, only: str = "", cpu: str = "", names: tuple[str, ...] = ()
) -> dict[str, fspeedup.PassCosts]:
    """The set-ups of one scripts/pass_cost.py result file (those whose name starts with `only`, and is one
    of `names` where given; named "set-up (cpu)" where `cpu` is given), the one whose name starts with
    `dtype` first; {} where the file is missing or malformed."""
    data = _read_pass_costs(str(path), path.stat().st_mtime_ns) if path.is_file() else None
    setups = data.get("ms") if data else None
    if not isinstance(setups, dict):
        return {}
    out: dict[str, fspeedup.PassCosts] = {}
    machine = str(data.get("machine") or "the machine that ran scripts/pass_cost.py (docs/BENCHMARKS.md)")
    context = f", context {data['context']} tokens" if isinstance(data.get("context"), int) else ""
    for setup in sorted(setups, key=lambda n: not (dtype and str(n).startswith(dtype))):
        wanted = str(setup).startswith(only) and (not names or setup in names)
        if wanted and (ms := _costs_by_k(setups[setup])):
            source = f"docs/results/{path.name} (scripts/pass_cost.py), {setup}{context}"
            out[f"file:{setup}{f' ({cpu})' if cpu else ''}"] = fspeedup.PassCosts(ms, source, machine)
    return out


def _start_from(default: tuple[str, theory.Measured] | None) -> None:
    """α, γ and c the first time the lab opens: a real sample's measurement where there is one."""
    state = st.session_state
    if default is not None and "lab_alpha" not in state:
        state["lab_alpha"], state["lab_gamma"], c = lab_values(default[1])
        state["lab_c"] = c or 0.0  # lab_defaults picks a timed sample: c is measured
        state["lab_from"] = default[0]
    state.setdefault("lab_alpha", 0.7)
    state.setdefault("lab_gamma", 4)
    state.setdefault("lab_c", 0.05)


def speedup_lab() -> None:
    st.markdown(
        "Drag **α** (how often the evaluation model accepts a draft), **γ** (drafts per step) and **c** (the cost "
        "of one draft token as a share of one evaluation pass) and read what the model predicts. "
        "[Maths and words](#glossary)"
    )
    points = _measured_points()
    default = lab_defaults()
    _start_from(default)
    a_col, g_col, c_col, from_col = st.columns([3, 3, 3, 2])
    alpha = a_col.slider(
        "α (acceptance rate)", 0.0, 0.99, step=0.01, key="lab_alpha", persist_state="session", on_change=_own_values
    )
    gamma = g_col.slider(
        "γ (drafts per step)", 1, theory.MAX_GAMMA, key="lab_gamma", persist_state="session", on_change=_own_values
    )
    c = c_col.slider(
        "c (draft cost ratio)",
        0.0,
        0.5,
        step=0.001,
        format="%.3f",
        key="lab_c",
        persist_state="session",
        on_change=_own_values,
    )
    by_name = {p.name: p for p in points}
    if st.session_state.get("lab_from") not in ("", *by_name):
        st.session_state["lab_from"] = ""
    from_col.selectbox(
        "…or take them from",
        ["", *by_name],
        key="lab_from",
        persist_state="session",
        format_func=lambda n: n or "a trace",
        on_change=_take_from,
        args=(by_name,),
        help="Set α, γ and c to what a sample trace (or a run of your sweep) measured.",
    )
    sources = pass_cost_sources(_sample_dtype(default[0]) if default else "")
    costs = _cost_choice(sources)
    e_tok = theory.expected_tokens(alpha, gamma)
    s_now = theory.speedup(alpha, gamma, c)
    g_best, s_best = theory.best_gamma(alpha, c)  # over 1..theory.MAX_GAMMA, as the Statistics verdict
    cols = st.columns(5 if costs else 4)
    cols[0].metric("expected tokens per step", f"{e_tok:.2f}")
    cols[1].metric("ideal speedup", f"{s_now:.2f}×", help=f"the speedup {theory.IDEAL_WORDS}")
    if costs:
        cols[-3].metric(
            "at measured costs",  # a fifth of the page beside its help icon: longer labels were cut
            f"{costs.speedup(alpha, gamma, c, gamma):.2f}×",
            help="the speedup with the measured pass costs below: "
            f"verification over γ + 1 = {gamma + 1} positions costs {costs.ratio(gamma + 1):.2f} one-token passes",
        )
    cols[-2].metric("best γ (ideal)", str(g_best), f"{s_best:.2f}×", delta_color="off", delta_arrow="off")
    cols[-1].metric(
        "break-even c",
        f"{theory.crossover_c(alpha, gamma):.3f}",
        help="above this c, γ = your γ is slower than the evaluation model alone (by the ideal formula)",
    )
    # "opened on <sample>: α = …" only while the sliders still hold that sample's values
    opened = default if default is not None and st.session_state.get("lab_from") == default[0] else None
    st.caption(_assumption_words(gamma, costs, opened))
    left, right = st.columns(2, gap="large")
    with left:
        st.latex(r"E[\text{tokens per step}] = \frac{1-\alpha^{\gamma+1}}{1-\alpha}")
        plot(fspeedup.tokens_figure(alpha, gamma, points), "lab_tokens")
    with right:
        st.latex(r"\text{speedup} = \frac{1-\alpha^{\gamma+1}}{(1-\alpha)(\gamma c+1)}")
        plot(fspeedup.speedup_figure(alpha, c, gamma, costs=costs), "lab_speedup")
    setups = {key.removeprefix("file:"): pc for key, pc in sources.items() if key.startswith("file:")}
    if len(setups) > 1:
        st.markdown(
            "**The same α and c in each numerics and weight format, side by side** — each curve with one machine's "
            "measured pass costs in that set-up, against the evaluation model alone in the same set-up. Where a wide "
            "pass costs little more than a one-token pass (bfloat16 on a CPU with bf16 units, a GPU) the curve follows "
            "the ideal; where it costs much more (float32 here), speculation can lose. Small weights (llama.cpp's "
            "4-bit blocks, torch's int8 and int4 kernels: `--weights`) make the one-token pass cheap — reading the weights was its cost — so the wide pass, "
            "which must also compute, is no longer nearly free: raw speed and the room for speculation trade."
        )
        plot(fspeedup.numerics_figure(alpha, c, gamma, setups), "lab_numerics")
        st.dataframe(_setup_table(setups, gamma), hide_index=True)
        runs = dict.fromkeys((pc.source.split(",")[0], pc.machine) for pc in setups.values())
        st.caption("Source: " + "; ".join(f"{md_escape(f)}, measured on {md_escape(m)}" for f, m in runs) + ".")
    if points:
        with st.expander("The measured points (sample traces and your sweep)"):
            st.dataframe(_points_table(points), hide_index=True)
    st.subheader("A fixed verification budget", anchor="budget")
    b1, b2 = st.columns([1, 2])
    budget = int(b1.number_input("Budget", 1, 100_000, 100, 10, key="lab_budget", persist_state="session"))
    unit = b2.radio(
        "counted in",
        ["passes", "positions", "compute"],
        format_func=fspeedup.BUDGET_WORDS.__getitem__,
        horizontal=True,
        key="lab_budget_unit",
        persist_state="session",
    )
    plot(fspeedup.budget_figure(alpha, budget, unit, c), "lab_budget_fig")
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
    sweep_section()
    st.divider()
    glossary()


def _sample_dtype(name: str) -> str:
    trace = sample_traces().get(name)
    return str(trace["meta"].get("dtype") or "") if trace else ""


def _cost_choice(sources: dict[str, fspeedup.PassCosts]) -> fspeedup.PassCosts | None:
    """Which measured pass costs to draw beside the ideal curve (none: the ideal only)."""
    if not sources:
        return None
    state = st.session_state
    if state.get("lab_costs") not in (*sources, "none"):
        state["lab_costs"] = next(iter(sources))  # this server's measurement once taken, else the file's
    key = st.selectbox(
        "Measured pass costs (drawn beside the ideal curve)",
        [*sources, "none"],
        key="lab_costs",
        persist_state="session",
        format_func=lambda k: "none: the ideal curve only" if k == "none" else sources[k].source,
        help="What one evaluation pass over k positions cost on a real machine: the formula's step then costs "
        "γ·c one-token passes for drafting plus one pass over γ + 1 positions, as measured.",
    )
    return sources.get(key)


def _assumption_words(gamma: int, costs: fspeedup.PassCosts | None, default: tuple[str, theory.Measured] | None) -> str:
    """The caption under the lab's numbers: what the ideal formula assumes, what was measured instead,
    and which sample the lab opened on (Markdown, escaped)."""
    words = [
        "The ideal speedup is the textbook formula: it assumes a verification pass over γ + 1 positions costs what "
        "a one-token pass of the evaluation model costs."
    ]
    if costs is not None:
        words.append(
            f"Measured instead ({md_escape(costs.source)}; {md_escape(costs.machine)}): a pass over γ + 1 = "
            f"{gamma + 1} positions costs {costs.ratio(gamma + 1):.2f}× a one-token pass, which 'at measured costs' "
            "charges each step on top of γ·c."
        )
    if default is not None:
        name, m = default
        words.append(
            f"The lab opened on the most recent chain sample, {md_escape(name)}: α = {float(m.alpha or 0):.2f}, "
            f"γ = {m.gamma}, c = {float(m.c or 0):.3f}, as measured from its steps."
        )
    return " ".join(words)


def tree_sizing_section() -> None:
    """What a verification pass costs on this machine, and the draft tree sized to it (`--tree auto`)."""
    st.subheader("Draft trees sized to this machine", anchor="tree-sizing")
    st.markdown(
        "A tree drafts several candidates per depth and the evaluation model scores them all in one pass. Whether "
        "that pays depends on what a pass over more positions costs *here*: specviz times passes over 1 to 64 "
        "positions, measures which nodes the evaluation model accepts on short calibration texts, and picks the "
        "branching and node budget with the most tokens per second (Sequoia's hardware-aware idea). The prediction "
        "is then checked: the predicted shape and a chain of the Live page's default settings decode the calibration "
        "text in turns, and the chain runs unless the prediction was at least 3% faster (a Live run checks against "
        "its own settings)."
    )
    st.button(
        "Measure this machine (default pair)",
        icon=":material/speed:",
        key="lab_size_tree",
        on_click=raise_flag,
        args=("lab_size_go",),
        help="About half a minute on a small CPU; one model run at a time on the server.",
    )
    if st.session_state.pop("lab_size_go", False):
        note = st.empty()
        with generation_slot(note):
            try:
                from specviz.drafters.factory import make_drafter

                with st.spinner("Timing evaluation passes and a calibration decode…"):
                    target, draft = live.load_models(DEFAULT, DEFAULT)
                    live.sized_config(live.LiveSettings(tree="auto"), target, make_drafter(target, draft))
            except Exception as exc:  # the UI boundary: whatever a model load raises
                st.error(f"Could not measure: {md_escape(f'{type(exc).__name__}: {exc}'[:600])}")
    sized = live.latest_sizing(DEFAULT, DEFAULT)
    if sized is None:
        st.caption(
            "Not measured in this server process yet: press the button, or run the Live page with a tree sized "
            "to this machine."
        )
        return
    auto = sized[1]["tree"]["auto"]
    plot(fspeedup.sizing_figure(auto), "lab_tree_sizing")
    raced = verdict.race_words(auto)
    checked = f" Checked: {md_escape(raced)}." if raced else ""
    st.caption(
        f"Chosen: {md_escape(auto['chosen'])}, from {auto['calibration_steps']} calibration steps; drafting costs "
        f"{auto['draft_ms_per_level']:.1f} ms per depth. Expected speeds use the calibration text's acceptance "
        f"(greedy): held-out text usually accepts less, so measure the real speedup with a live run.{checked}"
    )
    if auto.get("alpha_needed"):
        st.markdown(
            f"**What a draft must reach here.** {md_escape(theory.needed_text(auto['alpha_needed']).capitalize())}. "
            "That is the textbook formula with this machine's measured costs put in: a step pays for γ draft passes, "
            "one evaluation pass over γ + 1 positions (the curve above, not one pass) and its own bookkeeping. "
            "Compare it with the α of a chain run of your draft on the Statistics page (a tree's α pools several "
            "candidates per depth and does not compare): below the first number, chains of that draft are slower "
            "here than the evaluation model alone. The curve is timed in a few seconds, so on a busy machine these "
            "numbers move from one measurement to the next."
        )


def _setup_table(setups: dict[str, fspeedup.PassCosts], gamma: int) -> pd.DataFrame:
    """Per set-up: a one-token pass, a verification pass over γ + 1 positions, and their ratio (1 = free)."""
    rows = []
    for name, pc in setups.items():
        one = theory.interpolate_cost(dict(pc.ms), 1)
        rows.append(
            {
                "set-up": name,
                "one-token pass, ms": round(one, 1),
                f"pass over γ + 1 = {gamma + 1}, ms": round(one * pc.ratio(gamma + 1), 1),
                "verification in one-token passes": round(pc.ratio(gamma + 1), 2),
            }
        )
    return pd.DataFrame(rows)


def _points_table(points: list[theory.Measured]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "trace": p.name,
                "γ": p.gamma,
                "drafts per step": round(p.mean_drafts, 2),
                "α": round(p.alpha, 3),
                "tokens per step": round(p.tokens_per_step, 2),
                "theory": round(p.expected_tokens_per_step, 2),
                "c": None if p.c is None else round(p.c, 4),
                "ideal speedup (formula)": None if p.ideal_speedup is None else round(p.ideal_speedup, 2),
                "ms per token": None if p.ms_per_token is None else round(p.ms_per_token, 1),
            }
            for p in points
        ]
    )
