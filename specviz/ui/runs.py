"""Running models from a page (Live decoding, the Speedup lab's sweep and tree sizing, Compare's
reference run): the process-wide generation lock, held through a slot that tells the user while
another session has it; a run's control (the tab's liveness, the time limit); and the evaluation
model's own outputs kept for reference. The models themselves live in specviz.run.live's cache.

Imports no page module (see specviz/ui/__init__.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from specviz.run import live
from specviz.trace import Trace

__all__ = [
    "generation_slot",
    "ref_key",
    "reference_outputs",
    "run_control",
]


def _session_alive(session_id: str | None) -> bool:
    """False once the browser tab of this session is gone (closed, navigated away, disconnected)."""
    if session_id is None:
        return True
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return True
    try:
        return bool(Runtime.instance().is_active_session(session_id))
    except Exception:  # a runtime without sessions (tests): assume the session is there
        return True


def run_control() -> live.RunControl:
    """A RunControl for this session: its tab's liveness, and the time limit from now."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    sid = ctx.session_id if ctx is not None else None
    limit = live.MAX_RUN_SECONDS
    return live.RunControl(lambda: _session_alive(sid), time.monotonic() + limit, limit)


@contextmanager
def generation_slot(note: Any) -> Iterator[None]:
    """Hold the process-wide generation lock, telling the user while another session has it.

    Any Streamlit call may raise the rerun of a Stop click (or the stop of a closed tab), so the
    lock is released in every case.
    """
    acquired = live.GENERATION_LOCK.acquire(blocking=False)
    try:
        while not acquired:
            note.info("Another session is generating with the shared model; this run starts when it is done…")
            acquired = live.GENERATION_LOCK.acquire(timeout=0.5)
        note.empty()
        yield
    finally:
        if acquired:
            live.GENERATION_LOCK.release()


# ---------------------------------------------------------------- the evaluation model alone, for reference


def ref_key(trace: Trace) -> str:
    """What fixes the evaluation model's own output: model, prompt, warping, seed and budget."""
    m = trace.get("meta", {})
    samp = m.get("sampling", {})
    parts = [m.get("target", {}).get("name"), trace["prompt"]["token_ids"], m.get("seed"), m.get("max_new_tokens")]
    return json.dumps([*parts, samp.get("temperature"), samp.get("top_k"), samp.get("top_p")])


def reference_outputs() -> dict[str, dict[str, list[Any]]]:
    """The evaluation model alone, by ref_key: {"token_ids", "tokens"} (from a sweep or the compare page)."""
    return st.session_state.setdefault("compare_refs", {})
