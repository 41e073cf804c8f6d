"""Live decoding below the UI: the shared model cache, run control, the decode worker, the baseline.

The Live page only observes. A `LiveRun` decodes in a worker thread, then (if asked) runs the
evaluation model alone with the same settings and seed; the page polls its `progress()` a few times
a second and draws text only while it runs, so decoding never waits on drawing, on sending deltas
to the browser, or on the browser. Both runs are timed in the worker with the same clock and the
same model objects (same dtype), and the timings go into the trace's meta (`meta.timing`):

- model time: the sum of the decoder's own step timings (draft + verify), what `bench` and the
  statistics page call the decoding cost;
- wall time: the decode loop from its first step to its last, as the worker saw it (model time
  plus building the step records; the page's drawing is not in it).

From those timings specviz.run.verdict takes what the page says about speed and says it in one
sentence with its cause.

No Streamlit here: the page passes in how to tell that its browser tab is gone.
"""

from __future__ import annotations

import gc
import math
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from specviz.core.decoder import DEFAULT_CONFIDENCE
from specviz.core.rules import KINDS
from specviz.drafters.ngram import DEFAULT_LOOKUP_BELOW
from specviz.models.presets import DEFAULT, draft_ready
from specviz.trace import Trace, finish

if TYPE_CHECKING:  # torch and transformers load only when a run starts
    from specviz.core.decoder import DecodeConfig
    from specviz.core.tree import TreeShape
    from specviz.models.lm import CausalLM
    from specviz.run.record import Recording

__all__ = [
    "DEFAULT_PROMPT",
    "GENERATION_LOCK",
    "MAX_PAIRS",
    "MAX_RUN_SECONDS",
    "PAIRS",
    "PREDICTIONS",
    "SIZINGS",
    "LiveRun",
    "LiveSettings",
    "PairCache",
    "Progress",
    "RunControl",
    "env_number",
    "explain",
    "free_memory",
    "is_oom",
    "latest_sizing",
    "load_models",
    "sized_config",
]


def env_number(name: str, default: float) -> float:
    """A number from the environment (docs/SERVING.md lists them); the default when unset or not a number."""
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if math.isfinite(value) else default


MAX_PAIRS = int(env_number("SPECVIZ_MAX_PAIRS", 2))  # model pairs kept loaded at once, per server process
MAX_RUN_SECONDS = int(env_number("SPECVIZ_MAX_RUN_SECONDS", 600))  # a live run (with its baseline) stops after this
GENERATION_LOCK = threading.Lock()  # one generation at a time per process: the models are shared
# The Live page's first prompt. Chosen by running thirteen candidates on the embedded pair (greedy 128
# tokens, and the page's defaults) and reading the answers: the 135M model explains this one correctly,
# and with the highest acceptance among the answers it got right (α 0.64 at the defaults, 0.72 greedy).
# "Explain speculative decoding…" made it say wrong things about the very topic being taught.
DEFAULT_PROMPT = "What is photosynthesis? Explain it in three sentences."


@dataclass(frozen=True)
class LiveSettings:
    """What the Live page's controls say (and `bench` can be told the same)."""

    target: str = DEFAULT
    draft: str = DEFAULT  # a model spec, or "ngram"
    prompt: str = DEFAULT_PROMPT  # how it was chosen: see DEFAULT_PROMPT
    chat: bool = True
    gamma: int = 4
    rule: str = "sampling"
    tau: float = KINDS["threshold"].defaults["tau"]
    epsilon: float = KINDS["typical"].defaults["epsilon"]
    delta: float = KINDS["typical"].defaults["delta"]
    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    max_new_tokens: int = 64
    compare: bool = True  # time the evaluation model alone too: without it no run can say faster or slower
    adaptive: bool = False  # the heuristic draft-length schedule, gamma its maximum
    confidence: float = DEFAULT_CONFIDENCE  # a model draft stops below this q; 0 = off
    lookup_below: float = DEFAULT_LOOKUP_BELOW  # a model draft's chain copies from earlier text below this q; 0 = off
    tree: str = "chain"  # the --tree text: chain, auto, "3,2,1,1", "dynamic:N[:D[:K]]"

    def config(self) -> DecodeConfig:
        """The decoder configuration; raises ValueError with a readable message for bad values."""
        from specviz.core.decoder import build_config

        # the page keeps every rule's sliders; only the chosen rule's count
        params = {key: getattr(self, key) for key in KINDS[self.rule].defaults} if self.rule in KINDS else {}
        return build_config(
            gamma=self.gamma,
            rule=self.rule,
            **params,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            max_new_tokens=self.max_new_tokens,
            seed=self.seed,
            adaptive=self.adaptive,
            confidence=self.confidence,
            tree=self.shape(),  # auto: see sized_config
        )

    def shape(self) -> TreeShape:
        """The tree shape asked for; raises ValueError naming the accepted forms."""
        from specviz.core.tree import TreeShape

        return TreeShape.parse(self.tree)


PREDICTIONS: dict[tuple[str, str], Any] = {}  # (target, draft) → treesize.Sizing, measured once per pair and process
SIZINGS: dict[tuple[Any, ...], tuple[Any, dict[str, Any]]] = {}  # (target, draft, the run's chain) → (shape, meta)


def sized_config(s: LiveSettings, target: CausalLM, drafter: Any) -> tuple[DecodeConfig, dict[str, Any]]:
    """The run's configuration with `auto` resolved. The tree is sized to this machine once per pair and
    server process (about half a minute on a small CPU, specviz.run.treesize) and that prediction is checked
    against the run's own chain (its gamma, schedule, stop and copies: a few seconds) once per such chain,
    then reused. Returns (cfg, extra meta)."""
    from specviz.core.tree import TreeShape
    from specviz.run import treesize

    cfg, shape = s.config(), s.shape()
    if shape.kind != "auto":
        return cfg, {}
    pair = (s.target, s.draft)
    key = (*pair, s.gamma, s.adaptive, s.confidence, s.lookup_below)
    if key not in SIZINGS:
        if pair not in PREDICTIONS:
            PREDICTIONS[pair] = treesize.size_tree(target, drafter)
        _, meta = treesize.resolve_tree(cfg, shape, target, drafter, predicted=PREDICTIONS[pair])
        SIZINGS[key] = (TreeShape.parse(meta["tree"]["auto"]["chosen"]), meta)
    SIZINGS[key] = SIZINGS.pop(key)  # the most recent last: latest_sizing shows it
    chosen, meta = SIZINGS[key]
    return treesize.as_run(cfg, chosen), meta  # this session's settings; a chain when one child per node won


def latest_sizing(target: str, draft: str) -> tuple[Any, dict[str, Any]] | None:
    """The most recent (shape, meta) sized for this pair in this process, else for any pair, else None."""
    mine = [v for k, v in SIZINGS.items() if k[:2] == (target, draft)]
    return (mine or list(SIZINGS.values()) or [None])[-1]


# ---------------------------------------------------------------- the shared models


class PairCache:
    """The loaded model pairs, shared by every session: at most `limit`, the least recently used evicted.

    st.cache_resource(max_entries=...) evicts too, but it loads beside the entries it keeps and
    cannot be resized or inspected; this cache evicts *before* loading, so memory never holds more
    than `limit` pairs. Loads run one at a time under the cache's lock (which the generation lock
    is always taken before, never after, so the two cannot deadlock).
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._pairs: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._pairs:
                self._pairs.move_to_end(key)
                return self._pairs[key]
            while len(self._pairs) >= self.limit:
                self._pairs.popitem(last=False)
                free_memory()
            value = load()  # a failure caches nothing
            self._pairs[key] = value
            return value

    def loaded(self) -> list[tuple[str, str]]:
        """The pairs in memory, least recently used first."""
        with self._lock:
            return list(self._pairs)

    def clear(self) -> None:
        with self._lock:
            self._pairs.clear()
        free_memory()


def free_memory() -> None:
    """Give evicted models' memory back (the GPU's too, if torch is in use)."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


PAIRS = PairCache(MAX_PAIRS)


def load_models(target: str, draft: str, pairs: PairCache | None = None) -> tuple[CausalLM, Any]:
    """Once per server process per pair, shared by every session (never stored in session state)."""
    from specviz.drafters.pair import load_pair

    return (pairs or PAIRS).get((target, draft), lambda: load_pair(target, draft))  # type: ignore[no-any-return]


# ---------------------------------------------------------------- run control and errors


@dataclass
class RunControl:
    """When a live run must end: asked to stop, its browser tab gone, or its time up. The decoder polls it."""

    alive: Callable[[], bool]  # False once the page's browser tab is gone
    deadline: float
    limit_s: int = MAX_RUN_SECONDS
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None

    def should_stop(self) -> bool:
        if self.reason is None:
            if self.stop.is_set():
                self.reason = "stop requested"
            elif time.monotonic() > self.deadline:
                self.reason = f"the time limit of {self.limit_s} s per run"
            elif not self.alive():
                self.reason = "the browser tab was closed"
        return self.reason is not None


def is_oom(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def explain(exc: BaseException, s: LiveSettings) -> str:
    """What went wrong and what to do, as plain, unescaped text (the page makes it literal and escapes it)."""
    if is_oom(exc):
        return (
            "the GPU ran out of memory. Try a smaller model pair, fewer max new tokens, or ask the instructor "
            "to run the server on the CPU."
        )
    msg = str(exc) if type(exc).__name__ == "ModelLoadError" else f"{type(exc).__name__}: {exc}"
    msg = msg.replace("use --draft ngram", "choose prompt lookup as the drafter").replace("(--no-chat)", "(raw text)")
    msg = msg.replace("--draft ngram", "prompt lookup as the drafter").replace("--device cpu", "the CPU")
    if not draft_ready(s.draft, s.target):
        msg += " — This embedded draft is not installed: pick 'prompt lookup' as the drafter."
    return msg


# ---------------------------------------------------------------- the worker


@dataclass
class Progress:
    """What the page may draw while a run goes on: plain numbers and the trace's own (growing) steps."""

    phase: str  # "decoding" | "baseline" | "done"
    steps: int
    tokens: int
    baseline_tokens: int
    max_new_tokens: int


class LiveRun:
    """One live run: speculative decoding, then (if asked) the evaluation model alone, in a worker thread.

    The trace grows step by step in `recording.trace` (the page may read it: steps are only
    appended); `timing()` is final once `done` is set, and is written into the trace's meta.
    """

    def __init__(
        self,
        recording: Recording,
        cfg: DecodeConfig,
        control: RunControl,
        baseline: bool = False,
        settle_s: float = 0.0,
    ) -> None:
        """settle_s: wait this long before decoding starts (untimed), so that a browser on the same
        machine has finished redrawing the page after the Run click instead of competing with the
        first timed steps; the baseline, which starts on a quiet page, would otherwise be favoured."""
        self.recording, self.cfg, self.control, self.want_baseline = recording, cfg, control, baseline
        self.settle_s = settle_s
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.baseline: dict[str, Any] | None = None
        self.baseline_ids: list[int] = []  # grows while the evaluation model runs alone (the page shows it)
        self._phase = "decoding"
        self._tokens = 0
        self._wall_s = 0.0
        self._thread = threading.Thread(target=self._work, name="specviz-live-run", daemon=True)

    @property
    def trace(self) -> Trace:
        return self.recording.trace

    def start(self) -> LiveRun:
        self._thread.start()
        return self

    def join(self) -> None:
        """Wait for the worker (after control.stop, at most one step)."""
        self._thread.join()

    def progress(self) -> Progress:
        return Progress(
            self._phase, len(self.trace["steps"]), self._tokens, len(self.baseline_ids), self.cfg.max_new_tokens
        )

    def _work(self) -> None:
        self.control.stop.wait(self.settle_s)  # untimed; a Stop meanwhile ends the wait (and then the run)
        it = iter(self.recording)
        try:
            t0 = time.perf_counter()
            try:
                for step in it:
                    self._tokens = min(
                        self.cfg.max_new_tokens, self._tokens + step["n_accepted"] + (1 if step.get("next") else 0)
                    )
            finally:
                it.close()  # finishes the trace ("stopped" when the run was cut short)
                self._wall_s = time.perf_counter() - t0
            if self.want_baseline and self.control.reason is None:
                self._phase = "baseline"
                self.baseline = self._run_baseline()
        except Exception as exc:  # a model failure mid-run (e.g. out of memory): keep what was made
            self.error = exc
        finally:
            if "output" not in self.trace:
                finish(self.trace, "stopped")
            self.trace["meta"]["timing"] = self.timing()
            self._phase = "done"
            self.done.set()

    def _run_baseline(self) -> dict[str, Any]:
        from specviz.core.decoder import target_decode

        target = self.recording.target
        toks = self.baseline_ids
        t0 = time.perf_counter()
        for x in target_decode(
            target,
            self.recording.prompt_ids,
            self.cfg.sampling,
            self.cfg.max_new_tokens,
            self.cfg.seed,
            self.control.should_stop,
        ):
            toks.append(x)
        seconds = time.perf_counter() - t0
        eos = set(target.eos_token_ids)
        return {
            "text": target.tokenizer.decode(toks),
            "tokens": len(toks),
            "seconds": seconds,
            "token_ids": toks,
            # its end-of-turn token's text: the speculative trace may never have logged one (figures.text.end_tokens)
            "end_tokens": sorted({target.token_text(i) for i in toks if i in eos}),
        }

    def timing(self) -> dict[str, Any]:
        """meta.timing: how this run and its baseline were timed (docs/TRACE_FORMAT.md)."""
        steps = self.trace["steps"]
        model_ms = sum(
            float(s["timing_ms"].get("draft", 0.0)) + float(s["timing_ms"].get("verify", 0.0)) for s in steps
        )
        tokens = len(self.trace.get("output", {}).get("token_ids", []))
        out: dict[str, Any] = {
            "where": "live decode worker (perf_counter); the page's drawing is not included",
            "tokens": tokens,
            "model_ms": model_ms,
            "wall_ms": self._wall_s * 1e3,
            "baseline": None,
        }
        if self.baseline is not None:
            b = self.baseline
            out["baseline"] = {
                "what": "the evaluation model alone, same settings, seed and dtype, right after",
                "tokens": b["tokens"],
                "wall_ms": b["seconds"] * 1e3,
            }
        return out
