"""What the Live page says about a finished run, in numbers and one sentence each: its speed against the
evaluation model alone (`speed_numbers`, `speed_verdict`: faster or slower, by how much, and why — tokens
per verification pass against what a pass and the drafting cost here) and its output under the numerics
contract (`output_words`). From the trace's own timings (`meta.timing`, written by specviz.run.live's
worker). No Streamlit, no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from specviz.core import theory
from specviz.trace import Trace, first_parting

__all__ = [
    "EQUAL_WITHIN",
    "Outcome",
    "SpeedNumbers",
    "output_words",
    "race_words",
    "sized_words",
    "speed_numbers",
    "speed_verdict",
]

EQUAL_WITHIN = 0.02  # a measured ratio this close to 1 is "about as fast": closer than run-to-run noise here
Outcome = Literal["faster", "slower", "about as fast"]


@dataclass(frozen=True)
class SpeedNumbers:
    """What a run's speed verdict is made of. All measured in the decode worker (meta.timing and the
    steps' own timings) except `ideal`, which is the textbook formula with the measured α and c."""

    tokens: int
    seconds: float | None  # wall time of the speculative decode loop
    alpha: float | None  # None: nothing was drafted
    tokens_per_pass: float  # output tokens per verification pass (per step)
    gamma: int
    positions: float  # positions one verification pass scored, on average: γ + 1 for a full chain
    tree: bool = False  # the drafts were trees: a pass scored the tree's nodes and the last token
    baseline_tokens: int | None = None  # the evaluation model alone, same settings, right after
    baseline_seconds: float | None = None
    pass_cost: float | None = None  # one verification pass ÷ one token of the evaluation model alone
    draft_share: float | None = None  # drafting's share of the speculative wall time
    ideal: float | None = None  # theory.measure's ideal_speedup: theory.speedup(α, γ, c)

    @property
    def speed(self) -> float | None:
        """Speculative tokens per second."""
        return self.tokens / self.seconds if self.seconds and self.tokens else None

    @property
    def baseline_speed(self) -> float | None:
        """The evaluation model alone, tokens per second."""
        if not self.baseline_seconds or not self.baseline_tokens:
            return None
        return self.baseline_tokens / self.baseline_seconds

    @property
    def speedup(self) -> float | None:
        """Measured: speculative tokens/s ÷ the evaluation model alone's tokens/s."""
        speed, base = self.speed, self.baseline_speed
        return speed / base if speed and base else None

    @property
    def outcome(self) -> Outcome | None:
        """Faster, slower or about as fast as the evaluation model alone; None without a baseline."""
        ratio = self.speedup
        if ratio is None:
            return None
        if abs(ratio - 1.0) <= EQUAL_WITHIN:
            return "about as fast"
        return "faster" if ratio > 1.0 else "slower"


def speed_numbers(trace: Trace) -> SpeedNumbers:
    """The numbers behind `speed_verdict`, from a finished live run's trace and its meta.timing."""

    m = theory.measure(trace)
    steps = trace["steps"]
    timing = trace.get("meta", {}).get("timing") or {}
    wall_ms = float(timing.get("wall_ms") or 0.0)
    draft_ms = sum(float(s.get("timing_ms", {}).get("draft", 0.0)) for s in steps)
    scored = [len(s["tree"]["nodes"]) if "tree" in s else len(s["draft"]) for s in steps]  # drafts per pass
    base = timing.get("baseline") if isinstance(timing.get("baseline"), dict) else None
    b_tokens = int(base.get("tokens") or 0) if base else 0
    b_ms = float(base.get("wall_ms") or 0.0) if base else 0.0
    return SpeedNumbers(
        tokens=len(trace.get("output", {}).get("token_ids", [])),
        seconds=wall_ms / 1e3 if wall_ms > 0 else None,
        alpha=m.alpha,
        tokens_per_pass=m.tokens_per_step,
        gamma=m.gamma,
        positions=1.0 + sum(scored) / len(scored) if scored else 1.0,
        tree=any("tree" in s for s in steps),
        baseline_tokens=b_tokens or None,
        baseline_seconds=b_ms / 1e3 if b_ms > 0 else None,
        # the Statistics page's number: theory.timed_steps leaves out step 0, whose draft also reads the prompt
        pass_cost=m.verify_passes,
        draft_share=draft_ms / wall_ms if wall_ms > 0 and draft_ms > 0 else None,
        ideal=m.ideal_speedup,
    )


def _pass_words(n: SpeedNumbers) -> str:
    """'a pass over γ+1 = 5 positions', or what the passes really scored when drafts were shorter or trees."""
    if n.tree:
        return f"a pass over the draft tree's {n.positions:.1f} positions (its nodes and the last token)"
    if abs(n.positions - (n.gamma + 1)) < 0.2:  # the token budget cuts the last step or two short
        return f"a pass over γ+1 = {n.gamma + 1} positions"
    return f"a pass over {n.positions:.1f} positions on average (γ+1 = {n.gamma + 1} at most)"


def speed_verdict(n: SpeedNumbers) -> str:
    """The run's speed in one sentence with its cause, from measured numbers (plain text, our own words).

    "Speculative decoding was 0.87× the evaluation model alone — slower: α = 0.42 gave 1.64 tokens
    per verification pass, but a pass over γ+1 = 5 positions cost 2.1× a one-token pass here
    (measured), and drafting took 18% of the time." The formula's figure, where there is one, is
    labelled as the ideal it is.
    """
    if n.tokens == 0:
        return "Nothing was decoded, so there is no speed to judge."
    if n.speed is None:
        return "This run recorded no timing (meta.timing), so there is no speed to judge."
    ideal = f" The {theory.IDEAL_WORDS}: {n.ideal:.2f}×." if n.ideal is not None else ""
    if n.alpha is None:
        gain = "nothing was drafted, so every token needed its own verification pass"
    else:
        gain = f"α = {n.alpha:.2f} gave {n.tokens_per_pass:.2f} tokens per verification pass"
    costs = []
    if n.pass_cost is not None:
        costs.append(f"{_pass_words(n)} cost {n.pass_cost:.1f}× a one-token pass here (measured)")
    if n.draft_share is not None:
        costs.append(f"drafting took {n.draft_share:.0%} of the time")
    cost = " and ".join(costs)
    outcome = n.outcome
    if outcome is None:
        return (
            f"Speculative decoding ran at {n.speed:.1f} tok/s: {gain}"
            + (f"; {cost}" if cost else "")
            + ". Without the evaluation model alone timed beside it, this run cannot say whether that is faster "
            "or slower." + ideal
        )
    head = f"Speculative decoding was {n.speedup:.2f}× the evaluation model alone — {outcome}: {gain}"
    if not cost:
        return f"{head}.{ideal}"
    link = {"faster": ", while", "slower": ", but", "about as fast": ", and"}[outcome]
    after = ", which used up the gain" if outcome == "about as fast" else ""
    return f"{head}{link} {cost}{after}.{ideal}"


def output_words(trace: Trace, alone_ids: list[int]) -> str:
    """The speculative output against the evaluation model alone's, under the numerics contract.

    Greedy: identical, or where it parted and whether the trace proves a near-tie there (rounding in
    fast numerics, not the method). Sampled: the contract is the distribution, not the text.
    """
    numerics = (trace.get("meta") or {}).get("numerics") or {}
    mode = numerics.get("mode")
    dtype = numerics.get("dtype") or (trace.get("meta") or {}).get("dtype") or ""
    how = f" ({mode} numerics, {dtype})" if mode else ""
    part = first_parting(trace, alone_ids)
    if part.verdict == "not recorded" and "sampled" in part.why:
        same = list((trace.get("output") or {}).get("token_ids") or []) == list(alone_ids)
        return (
            f"The two outputs are {'identical' if same else 'different'}: the run sampled, so a lossless rule promises "
            "the evaluation model's distribution, not its text (lossy rules may drift)."
        )
    if mode == "exact" and part.verdict != "identical":
        ids = list((trace.get("output") or {}).get("token_ids") or [])
        at = next((i for i, (a, b) in enumerate(zip(ids, alone_ids, strict=False)) if a != b), None)
        if at is not None:
            return (
                f"Parted from the evaluation model alone at token {at}{how}, where greedy speculative output must be "
                "identical token for token: this should never happen, so please report this trace."
            )
    return part.words() + how


def sized_words(trace: Trace) -> str | None:
    """What `--tree auto` (the Live page's "sized to this machine") chose for this run, in plain words (no
    markup); None when the run was not sized. A one-child-per-node winner ran as a chain (run.treesize.as_run)."""
    meta = trace.get("meta") or {}
    tree = meta.get("tree") if isinstance(meta.get("tree"), dict) else None
    auto = tree.get("auto") if tree else None
    if not isinstance(auto, dict):
        return None
    if tree.get("kind") == "chain":
        g = meta.get("gamma")
        shape = f"a chain of {g} draft{'s' if g != 1 else ''} a step" if isinstance(g, int) else "a chain"
    else:
        shape = f"a {tree.get('kind', '')} tree of {tree.get('nodes', '?')} nodes".replace("a  tree", "a tree")
    words = race_words(auto)
    if words and auto["race"]["kept"] == "chain":  # race_words vouched for the race's shape
        why = f"the run's own chain ({words})"
    else:
        best = "the shape with the most tokens per second on its measured pass costs and calibration decodes"
        why = f"{best} ({words})" if words else best
    return (
        f"Sized to this machine: {shape}, {why} (the Speedup lab's section 'Draft trees sized to this machine' "
        "draws them)."
    )


def race_words(auto: dict[str, Any]) -> str | None:
    """What meta.tree.auto's race measured, in plain words: the predicted shape and the run's own chain
    decoding the calibration text, and which ran. None without a race, or when the race (from a trace:
    hostile input) is not the numbers it should be."""
    race = auto.get("race")
    if not isinstance(race, dict) or race.get("kept") not in ("predicted", "chain"):
        return None
    sides = [race.get(k) if isinstance(race.get(k), dict) else {} for k in ("predicted", "chain")]
    speeds = [d.get("tokens_per_s") for d in sides]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in speeds):
        return None
    (pred, chain), kept = (str(d.get("shape", ""))[:60] for d in sides), race["kept"]
    return (
        f"timed end to end on the calibration text, the predicted {pred} decoded {speeds[0]:.1f} tok/s and the "
        f"run's {chain} {speeds[1]:.1f}, so the {'prediction' if kept == 'predicted' else 'chain'} runs"
    )
