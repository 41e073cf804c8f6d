"""The app under hostile input and faults: minimal traces, event logs, hostile text, versions, model
failures (missing model, no hub, tokenizer mismatch, out of memory), a stop or a closed tab mid-run,
and the bounded model cache. AppTest for the pages, plain unit tests for the machinery."""

from __future__ import annotations

import copy
import gc
import json
import re
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import pytest
import torch
from streamlit.testing.v1 import AppTest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from specviz import figures as fg
from specviz.drafters.model import ModelDrafter
from specviz.run import live
from specviz.trace import dumps, validate
from specviz.ui import live as ui_live
from specviz.ui import live_form, runs, traces
from tests.apptestkit import live_with, ok, open_page, player, step_title
from tests.conftest import SPECIALS, WORDS, make_model

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parents[1] / "data"
BASE: dict[str, Any] = json.loads((DATA / "valid" / "tiny.json").read_text())
MINIMAL: dict[str, Any] = json.loads((DATA / "valid" / "minimal.json").read_text())
EXAMPLE = ROOT / "assets" / "example-eventlog.csv"
RLO = "\u202e"
HOSTILE = [
    "<script>window.__pwned=1</script>",
    "<img/src=x/onerror=window.__pwned=1>",
    "**bold** [link](javascript:alert(1)) :red[x] $x^2$",
    f"{RLO}gnp.exe",
]


def upload(at: AppTest, name: str, data: bytes, page: str = "replay") -> AppTest:
    return ok(at.file_uploader(key=f"{page}_upload").upload(name, data, "application/octet-stream").run())


MARKDOWN = ("markdown", "info", "caption", "error", "warning")


def texts(at: AppTest, kinds: tuple[str, ...] = (*MARKDOWN, "text")) -> list[str]:
    return [e.value for kind in kinds for e in at.get(kind)]


def strings(obj: Any) -> list[str]:
    """Every string inside a JSON value (a Plotly figure's spec)."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in strings(v)]
    return []


# ---------------------------------------------------------------- minimal traces degrade gracefully


def test_minimal_native_trace_replays_and_says_what_is_missing() -> None:
    assert validate(MINIMAL, strict=False) == [] and validate(MINIMAL)  # lenient yes, strict no
    at = open_page("pages/replay.py")
    upload(at, "minimal.json", json.dumps(MINIMAL).encode())
    assert not at.error and step_title(at).startswith("Step 0 of")
    notice = next(i.value for i in at.info if "records no" in i.value)
    assert "top" in notice and "timings" in notice and "random draws r" in notice
    _, data = player(at)  # the player says it has no distributions panel, and draws p and q
    assert all(s["distributions"] is None and s["acceptance"] for s in data["steps"])
    assert "no distributions panel" in data["text"]["no_distributions"]
    ok(at.switch_page("pages/stats.py").run())
    assert any("no cost analysis" in i.value for i in at.info)
    assert next(m for m in at.metric if m.label == "cost ratio c").value == "—"


def test_trace_without_p_and_q_has_no_acceptance_diagram() -> None:
    t = copy.deepcopy(MINIMAL)
    for s in t["steps"]:
        for d, v in zip(s["draft"], s["verify"], strict=True):
            d.pop("q")
            v.pop("p")
        s.pop("next")
    t.pop("output")
    at = open_page("pages/replay.py")
    upload(at, "bare.json", json.dumps(t).encode())
    assert not at.error
    _, data = player(at)
    assert (
        all(s["acceptance"] is None for s in data["steps"]) and "no acceptance diagram" in data["text"]["no_acceptance"]
    )
    assert any("does not record which token" in s["next"] for s in data["steps"])
    ok(at.switch_page("pages/stats.py").run())
    assert next(m for m in at.metric if m.label == "steps").value == str(len(t["steps"]))


def test_event_log_upload_on_replay_and_stats() -> None:
    at = open_page("pages/replay.py")
    upload(at, "example-eventlog.csv", EXAMPLE.read_bytes())
    assert not at.error
    assert at.selectbox(key="replay_trace").value.startswith("upload:")
    assert any("Imported from an event log" in i.value for i in at.info)
    _, data = player(at)  # acceptance diagram and timeline; no top lists
    assert data["steps"][0]["acceptance"] and data["steps"][0]["distributions"] is None
    ok(at.switch_page("pages/stats.py").run())
    assert len(at.get("plotly_chart")) == 4  # the log has timings: the cost analysis is there
    assert next(m for m in at.metric if m.label == "cost ratio c").value != "—"


def test_broken_event_log_is_explained_by_line_and_column() -> None:
    at = open_page("pages/replay.py")
    upload(at, "log.csv", b"step,position,draft_token,q,accepted\n0,0,a,1.5,true\n")
    assert "Could not open this upload" in at.error[0].value
    assert "line 2, column q" in at.error[0].value.replace("\\", "")


@pytest.mark.parametrize(
    ("version", "message"),
    [(0, "trace version 0 is not supported"), (3, "written by a newer specviz"), ("1", "versions are integers")],
)
def test_other_versions_are_refused_by_name(version: Any, message: str) -> None:
    t = copy.deepcopy(BASE)
    t["version"] = version
    at = open_page("pages/replay.py")
    upload(at, "old.json", json.dumps(t).encode())
    assert message in at.error[0].value.replace("\\", "")


def test_upload_caps_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(traces, "MAX_UPLOAD_BYTES", 1000)
    at = open_page("pages/replay.py")
    upload(at, "big.json", dumps(BASE).encode())  # type: ignore[arg-type]
    assert "the limit is 1000 bytes" in at.error[0].value
    monkeypatch.setattr(traces, "MAX_UPLOAD_BYTES", 10**7)
    monkeypatch.setattr(traces, "MAX_UPLOAD_STEPS", 2)
    at = open_page("pages/replay.py")
    upload(at, "long.json", dumps(BASE).encode())  # type: ignore[arg-type]
    assert "traces of up to 2" in at.error[0].value


# ---------------------------------------------------------------- hostile text


def hostile_trace() -> dict[str, Any]:
    t = copy.deepcopy(BASE)
    ids = sorted({d["token_id"] for s in t["steps"] for d in s["draft"]} | {s["next"]["token_id"] for s in t["steps"]})
    text = {tid: HOSTILE[i % len(HOSTILE)] for i, tid in enumerate(ids)}

    def fix(entry: dict[str, Any]) -> None:
        if "token_id" in entry and "token" in entry:
            entry["token"] = text.get(entry["token_id"], entry["token"])
        for v in entry.values():
            if isinstance(v, dict):
                fix(v)
            elif isinstance(v, list):
                for x in v:
                    if isinstance(x, dict):
                        fix(x)

    for s in t["steps"]:
        fix(s)
    first = t["steps"][0]  # step 0, shown first, gets one of each in its words
    for d, attack in zip(first["draft"], HOSTILE, strict=False):
        d["token"] = attack
    first["next"]["token"] = HOSTILE[-1]
    t["prompt"]["text"] = " ".join(HOSTILE)
    t["output"]["text"] = "".join(text[i] for i in t["output"]["token_ids"])
    t["meta"]["target"]["name"] = HOSTILE[1]
    assert validate(t) == []
    return t


def test_hostile_text_is_shown_literally_everywhere() -> None:
    at = open_page("pages/replay.py")
    upload(at, f"{RLO}evil<b>.json", json.dumps(hostile_trace()).encode())
    assert not at.error and not at.get("html")
    for value in texts(at, MARKDOWN):  # markdown: every active character escaped, so it shows as typed
        ours = re.sub(r":[a-z]+(-background)?\[", "", value.replace("**", ""))  # the app's own colour markup
        assert re.search(r"(?<!\\)[<$*\[]", ours) is None, value
        assert RLO not in value and "](javascript" not in value and ":red[x]" not in value
    assert all(RLO not in v for v in texts(at))  # bidi overrides are shown as \u202e, never applied
    assert all(RLO not in option for option in at.selectbox(key="replay_trace").options)
    _, data = player(at)  # the browser player writes its words with textContent: plain text, made visible
    words = [data["prompt"], data["name"], *(t[0] for t in data["tokens"])]
    for s in data["steps"]:
        words += [*s["describe"], s["next"], *(cell for row in s["table"]["rows"] for cell in row)]
    assert all(RLO not in w for w in words) and any("\\u202e" in w for w in words)
    assert HOSTILE[0] in data["prompt"] and "\\u202egnp.exe" in data["prompt"]
    found = strings(data["timeline"]["spec"])
    for s in data["steps"]:
        found += strings([s["acceptance"], *(s["distributions"] or {}).get("specs", [])])
    assert found and not any("<script>" in v or "<img/src" in v or RLO in v or "$" in v for v in found)
    assert any("&lt;script&gt;" in v for v in found) and any("&#36;x^2&#36;" in v for v in found)
    ok(at.switch_page("pages/stats.py").run())
    assert any("\\<img/src\\=x" in v for v in texts(at, MARKDOWN))  # the model name, escaped
    assert all(RLO not in v and re.search(r"(?<!\\)<", v) is None for v in texts(at, MARKDOWN))


def test_literal_and_visible_escape_invisible_characters() -> None:
    assert fg.literal("a\nb\tc") == "a\nb\tc"
    assert fg.literal(f"x{RLO}y\u200bz\x07") == "x\\u202ey\\u200bz\\u0007"
    assert fg.literal("\ud800") == "\\ud800"  # a lone surrogate (in memory) cannot break the page
    assert fg.visible(f"{RLO}\u2066") == "\\u202e\\u2066"
    assert fg.esc("$x$ <b>") == "&#36;x&#36;␣&lt;b&gt;"


# ---------------------------------------------------------------- live decoding faults


def run(at: AppTest) -> AppTest:
    return ok(at.button(key="live_run").click().run())


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "PAIRS", live.PairCache(2))


def assert_idle() -> None:
    assert not live.GENERATION_LOCK.locked() and ui_live.active_runs() == 0


def test_a_hub_model_that_does_not_exist_offline(model_dirs: tuple[Path, Path]) -> None:
    at = run(live_with(model_dirs, target="nobody-at-all/no-such-model-123"))
    msg = at.error[0].value.replace("\\", "")
    assert "Could not load the models" in msg and "hub is not reachable" in msg and "no-such-model-123" in msg
    assert_idle()
    at = run(live_with(model_dirs))  # the server carries on
    assert validate(at.session_state["live_result"]["trace"]) == []


@pytest.fixture(scope="module")
def foreign_draft(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A draft of the right size whose tokenizer numbers the words differently."""
    vocab = {tok: i for i, tok in enumerate(SPECIALS + WORDS[::-1])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>")
    path = tmp_path_factory.mktemp("foreign")
    make_model(5, len(fast)).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_a_draft_with_another_tokenizer(model_dirs: tuple[Path, Path], foreign_draft: Path) -> None:
    at = live_with(model_dirs)
    at.text_input(key="live_draft").input(str(foreign_draft))
    run(at)
    msg = at.error[0].value.replace("\\", "")
    assert "different tokenizer" in msg and "prompt lookup" in msg and "--draft" not in msg
    assert_idle()


def test_out_of_memory_while_loading(model_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import specviz.drafters.pair

    def boom(*_: Any, **__: Any) -> Any:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(specviz.drafters.pair, "load_pair", boom)
    at = run(live_with(model_dirs))
    assert "ran out of memory" in at.error[0].value and "smaller model" in at.error[0].value
    assert live.PAIRS.loaded() == [] and not at.exception
    assert_idle()
    monkeypatch.undo()
    at = run(live_with(model_dirs))
    assert "live_result" in at.session_state


def test_out_of_memory_mid_run_keeps_the_partial_trace(
    model_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ModelDrafter.propose
    calls = {"n": 0}

    def propose(self: ModelDrafter, *a: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, *a, **kw)

    monkeypatch.setattr(ModelDrafter, "propose", propose)
    at = run(live_with(model_dirs, max_new=40))
    result = at.session_state["live_result"]
    assert "out of memory" in result["error"]
    assert len(result["trace"]["steps"]) == 2 and result["trace"]["output"]["stop_reason"] == "stopped"
    assert validate(result["trace"]) == []
    assert any("ran out of memory" in e.value for e in at.error)
    assert at.get("download_button")  # the partial trace can be downloaded
    assert_idle()


def test_closed_tab_stops_the_run_and_releases_everything(
    model_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = {"n": 0}

    def alive(_: str | None) -> bool:
        checks["n"] += 1
        return checks["n"] <= 2  # the tab "closes" while step 2 is being made

    monkeypatch.setattr(runs, "_session_alive", alive)
    at = run(live_with(model_dirs, max_new=40))
    result = at.session_state["live_result"]
    assert result["stopped"] and result["stop_note"] == "the browser tab was closed"
    trace = result["trace"]
    assert 0 < len(trace["steps"]) < 10 and trace["output"]["stop_reason"] == "stopped" and validate(trace) == []
    assert_idle()


def test_a_run_stops_at_its_time_limit(model_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "MAX_RUN_SECONDS", -1)
    at = run(live_with(model_dirs, max_new=40))
    result = at.session_state["live_result"]
    assert result["stopped"] and "time limit" in result["stop_note"]
    assert any("time limit" in w.value for w in at.warning)
    assert_idle()


def test_stop_mid_run_releases_the_lock_and_keeps_the_partial_trace(
    model_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Stop click (or a closed tab) reaches the running script as an exception at its next Streamlit
    call; the worker then stops after its current step, and the lock is released only after it."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    class Interrupting:  # stands in for the page's placeholders: the second progress update is interrupted
        def __init__(self) -> None:
            self.calls = 0

        def progress(self, *_: Any, **__: Any) -> None:
            self.calls += 1
            if self.calls == 2:
                raise StopException()

        def markdown(self, *_: Any) -> None:
            pass

        info = markdown

        def empty(self) -> None:
            pass

    from specviz.drafters.factory import make_drafter
    from specviz.drafters.pair import load_pair
    from specviz.run.record import Recording

    target, draft = load_pair(str(model_dirs[0]), str(model_dirs[1]))
    settings = ui_live.LiveSettings(temperature=0.0, rule="greedy", max_new_tokens=400)
    control = live.RunControl(lambda: True, time.monotonic() + 60)
    rec = Recording(
        target,
        make_drafter(target, draft),
        "x",
        settings.config(),
        prompt_ids=[1, 3, 4, 5],
        should_stop=control.should_stop,
    )
    run = live.LiveRun(rec, settings.config(), control)
    slot = Interrupting()
    monkeypatch.setattr(ui_live, "POLL_SECONDS", 0.01)
    with pytest.raises(StopException), runs.generation_slot(slot):
        try:
            run.start()
            ui_live._follow(run, slot, slot)
        finally:
            control.stop.set()
            run.join()
    assert_idle()
    trace = rec.trace
    assert trace["output"]["stop_reason"] == "stopped" and validate(trace) == [] and len(trace["steps"]) < 400
    assert trace["meta"]["timing"]["tokens"] == len(trace["output"]["token_ids"])


def test_waiting_for_another_session_then_running() -> None:
    notes: list[str] = []

    class Note:
        def info(self, text: str) -> None:
            notes.append(text)

        def empty(self) -> None:
            pass

    live.GENERATION_LOCK.acquire()
    threading.Timer(0.7, live.GENERATION_LOCK.release).start()
    t0 = time.monotonic()
    with runs.generation_slot(Note()):
        assert time.monotonic() - t0 >= 0.6
    assert notes and "Another session is generating" in notes[0]
    assert_idle()


def test_run_control_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    c = live.RunControl(lambda: True, time.monotonic() + 60)
    assert not c.should_stop()
    c.stop.set()
    assert c.should_stop() and c.reason == "stop requested"
    assert live.RunControl(lambda: True, time.monotonic() - 1).should_stop()
    gone = live.RunControl(lambda: False, time.monotonic() + 60)
    assert gone.should_stop() and gone.reason == "the browser tab was closed"
    monkeypatch.setattr(runs, "_session_alive", lambda sid: sid != "gone")
    assert runs._session_alive(None) and not runs._session_alive("gone")


# ---------------------------------------------------------------- the bounded model cache


class Model:
    pass


def test_pair_cache_is_lru_bounded_and_frees_evicted_models() -> None:
    cache = live.PairCache(2)
    loads: list[str] = []

    def loader(name: str) -> Any:
        def load() -> Model:
            loads.append(name)
            return Model()

        return load

    a = weakref.ref(cache.get(("a", "x"), loader("a")))
    cache.get(("b", "x"), loader("b"))
    cache.get(("a", "x"), loader("a"))  # a is now the most recent
    cache.get(("c", "x"), loader("c"))  # evicts b, the least recently used
    assert cache.loaded() == [("a", "x"), ("c", "x")] and loads == ["a", "b", "c"]
    cache.get(("d", "x"), loader("d"))  # evicts a
    gc.collect()
    assert a() is None  # evicted means gone, not just unlisted

    def fail() -> Any:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get(("e", "x"), fail)
    assert ("e", "x") not in cache.loaded() and len(cache.loaded()) <= 2  # a failure caches nothing
    assert live.PairCache(0).limit == 1


def test_pair_cache_under_concurrent_sessions_never_deadlocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # locks are under test, not the garbage collector: a full gc.collect() per eviction (~150 of them)
    # took a minute in a process that had loaded torch and models, past the joins' timeouts
    monkeypatch.setattr(live, "free_memory", lambda: None)
    cache = live.PairCache(2)
    seen: list[int] = []

    def worker(i: int) -> None:
        for j in range(20):
            key = (f"m{(i + j) % 4}", "d")
            cache.get(key, lambda: (time.sleep(0.002), Model())[1])
            seen.append(len(cache.loaded()))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "deadlock"
    assert max(seen) <= 2 and len(seen) == 160


def test_two_pairs_in_turn_stay_within_the_limit(
    model_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "PAIRS", live.PairCache(1))
    run(live_with(model_dirs))
    first = live.PAIRS.loaded()
    at = live_with(model_dirs)
    at.radio(key="live_drafter").set_value(live_form.NGRAM)
    run(at)
    assert len(live.PAIRS.loaded()) == 1 and live.PAIRS.loaded() != first
    assert validate(at.session_state["live_result"]["trace"]) == []
    assert_idle()
