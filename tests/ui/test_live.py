"""Live decoding (specviz/ui/live.py) with AppTest on the tiny pair: runs, the baseline, feature
heads, adaptive γ, trees, errors explained, Stop keeping the partial trace, long prompts.
Failing models and interrupted runs: tests/ui/test_faults.py."""

from __future__ import annotations

import copy

import pytest

from specviz import figures as fg
from specviz.run import live, verdict
from specviz.trace import validate
from specviz.ui import live as ui_live
from specviz.ui.common import md_escape
from tests.apptestkit import live_with, metric, ok, open_page, player, step_title


def test_live_decoding_with_tiny_models(model_dirs):
    at = live_with(model_dirs)
    assert at.checkbox(key="live_compare").value  # compared with the evaluation model alone by default
    ok(at.button(key="live_run").click().run())
    result = at.session_state["live_result"]
    trace = result["trace"]
    assert validate(trace) == [] and not result["stopped"]
    assert len(trace["output"]["token_ids"]) == 12
    assert next(m for m in at.metric if m.label == "tokens").value == "12"
    assert at.get("download_button")
    texts = [t.value for t in at.text]
    assert fg.readable_output(trace["output"]["text"], trace) in texts
    assert fg.readable_output(result["baseline"]["text"], trace) in texts
    assert result["baseline"]["text"] == trace["output"]["text"]  # greedy + lossless: the same text
    assert any(c.value.startswith("Same output as the evaluation model alone, token for token") for c in at.caption)
    # one speed story: the measured verdict, in a sentence with its cause, in a box of its colour
    n = verdict.speed_numbers(trace)
    boxes = {"faster": at.success, "slower": at.warning, "about as fast": at.info}[n.outcome]
    assert any(b.value == verdict.speed_verdict(n) for b in boxes)
    assert (
        f"Speculative decoding was {n.speedup:.2f}× the evaluation model alone — {n.outcome}:"
        in verdict.speed_verdict(n)
    )
    assert float(metric(at, "alone tok/s")) > 0
    # the run is now a trace the replay page can open
    ok(at.button(key="live_to_replay").click().run())
    assert at.selectbox(key="replay_trace").value == result["key"]
    assert step_title(at).startswith("Step 0 of")


def test_the_feature_preset_says_what_the_feature_draft_reads():
    at = open_page("pages/live.py")
    assert "standalone" in at.selectbox(key="live_preset").value  # the default: the faster draft here
    assert not any("Feature draft" in c.value for c in at.caption)  # a separate model reads only tokens
    feature = next(p for p in at.selectbox(key="live_preset").options if "feature draft" in p)
    ok(at.selectbox(key="live_preset").set_value(feature).run())
    assert any("Feature draft" in c.value and "hidden state" in c.value for c in at.caption)


def test_live_decoding_with_a_feature_head(model_dirs, target, tmp_path):
    from specviz.drafters.feature import save_head
    from tests.drafters.test_feature import tiny_head

    head_dir = tmp_path / "head"
    save_head(tiny_head(target), head_dir, None, {})
    at = live_with((model_dirs[0], head_dir))
    ok(at.button(key="live_run").click().run())
    trace = at.session_state["live_result"]["trace"]
    assert validate(trace) == [] and trace["meta"]["draft"]["kind"] == "feature"
    # the run goes to the replay and statistics pages with the same words about what the draft reads
    ok(at.switch_page("pages/stats.py").run())
    ok(at.selectbox(key="stats_trace").set_value(at.session_state["live_result"]["key"]).run())
    assert any("Feature draft" in c.value for c in at.caption)


def test_live_adaptive_draft_length_is_recorded(model_dirs):
    at = live_with(model_dirs)
    at.slider(key="live_gamma").set_value(6)
    at.checkbox(key="live_adaptive").check()
    at.number_input(key="live_confidence").set_value(0.2)
    ok(at.button(key="live_run").click().run())
    trace = at.session_state["live_result"]["trace"]
    assert validate(trace) == []
    policy = trace["meta"]["gamma_policy"]
    assert (policy["name"], policy["start"], policy["max"], policy["confidence"]) == ("heuristic", 4, 6, 0.2)
    assert len(trace["steps"][0]["draft"]) <= 4  # the schedule starts at 4, below the maximum of 6


def test_live_copies_from_the_text_where_the_draft_is_unsure(model_dirs):
    """The page's fallback setting reaches the drafter: off, no draft is copied; at 1, copies are marked."""
    for below, copies in ((0.0, False), (1.0, True)):
        at = live_with(model_dirs)
        at.number_input(key="live_lookup").set_value(below)
        ok(at.button(key="live_run").click().run())
        trace = at.session_state["live_result"]["trace"]
        assert validate(trace) == []
        assert ("lookup" in trace["meta"]["draft"]) == (below > 0)
        assert any("copied" in d for s in trace["steps"] for d in s["draft"]) == copies


def test_live_decoding_with_a_draft_tree_then_its_tree_on_the_replay_page(model_dirs):
    """The Live page's draft shape: a tree run is recorded with its shape, and the step-through page
    draws the step's tree and its attention mask; Statistics says how to read a tree trace."""
    at = live_with(model_dirs, max_new=16)
    ok(at.selectbox(key="live_tree").set_value("2,2,1,1").run())
    ok(at.button(key="live_run").click().run())
    result = at.session_state["live_result"]
    trace = result["trace"]
    assert validate(trace) == [] and trace["meta"]["tree"]["shape"] == "2,2,1,1"
    assert all("tree" in s for s in trace["steps"])
    ok(at.button(key="live_to_replay").click().run())
    _, data = player(at)  # the step-through player, opened on this run
    assert data["n"] == len(trace["steps"])
    for s, d in zip(trace["steps"], data["steps"], strict=True):  # a step whose tree has no nodes reads as a chain's
        assert (d["tree"]["tree"] and d["tree"]["mask"]) if s["tree"]["nodes"] else d["tree"] is None
    assert data["text"]["tree"].startswith("Draft tree") and data["text"]["mask"].startswith("Tree attention mask")
    ok(at.switch_page("pages/stats.py").run())
    ok(at.selectbox(key="stats_trace").set_value(result["key"]).run())
    assert any("drafted trees" in c.value for c in at.caption)


def test_live_model_errors_are_explained(model_dirs, tmp_path):
    at = live_with(model_dirs)
    at.text_input(key="live_target").input(str(tmp_path / "no-such-model"))
    ok(at.button(key="live_run").click().run())
    assert at.error and "Could not load the models" in at.error[0].value
    at = live_with(model_dirs)
    at.radio(key="live_chat").set_value("chat template")  # the tiny tokenizer has none
    ok(at.button(key="live_run").click().run())
    assert at.error and "chat template" in at.error[0].value


def test_live_bad_settings_are_explained():
    at = open_page("pages/live.py")
    at.text_area(key="live_prompt").input("   ")
    ok(at.button(key="live_run").click().run())
    assert at.error and "prompt is empty" in at.error[0].value
    with pytest.raises(ValueError, match="top_p"):
        ui_live.LiveSettings(top_p=0.0).config()


def test_stop_keeps_the_partial_trace(tiny_trace):
    partial = copy.deepcopy(tiny_trace)
    partial["steps"] = partial["steps"][:3]
    del partial["output"]
    at = open_page("pages/live.py")
    at.session_state["live_partial"] = {"trace": partial, "settings": {}, "seconds": 0.5, "baseline": None}
    ok(at.run())
    result = at.session_state["live_result"]
    assert result["stopped"] and result["trace"]["output"]["stop_reason"] == "stopped"
    assert validate(result["trace"]) == []
    assert any("Stopped after 3 steps" in w.value for w in at.warning)


def test_a_prompt_longer_than_the_model_reads_is_warned_about(model_dirs):
    """Public report: a prompt past the target's context length ran with no word about it."""
    at = live_with(model_dirs, max_new=2)
    at.text_area(key="live_prompt").input("the cat sat on the mat " * 120)  # ~720 tokens; the tiny model reads 512
    ok(at.button(key="live_run").click().run())
    assert any("reads at most 512" in w.value for w in at.warning)


def test_without_the_baseline_the_verdict_says_it_cannot_compare(model_dirs):
    at = live_with(model_dirs)
    at.checkbox(key="live_compare").uncheck()
    ok(at.button(key="live_run").click().run())
    result = at.session_state["live_result"]
    assert result["baseline"] is None and result["trace"]["meta"]["timing"]["baseline"] is None
    assert any("cannot say whether that is faster or slower" in i.value for i in at.info)
    assert not at.success and not any("the evaluation model alone —" in w.value for w in at.warning)


def test_the_info_box_says_exactly_what_streams():
    at = open_page("pages/live.py")
    assert at.text_area(key="live_prompt").value == live.DEFAULT_PROMPT and at.checkbox(key="live_compare").value
    words = at.info[0].value
    assert words == ui_live.while_running_words(True) and "No chart is drawn" in words
    assert "drafts, decisions and new token appear as they happen" not in words
    at.checkbox(key="live_compare").uncheck()
    ok(at.run())
    assert at.info[0].value == ui_live.while_running_words(False) and "runs alone" not in at.info[0].value


def test_the_live_timeline_says_which_steps_it_shows(model_dirs):
    """The timeline shows the last TIMELINE_ROWS steps, in the step page's words."""
    from specviz.teach.player import TIMELINE_ROWS

    at = live_with(model_dirs, max_new=90)
    at.checkbox(key="live_compare").uncheck()
    ok(at.button(key="live_run").click().run())
    n = len(at.session_state["live_result"]["trace"]["steps"])
    assert n > TIMELINE_ROWS
    note = f"Showing steps {n - TIMELINE_ROWS}–{n - 1} of {n}; **Step through this run** shows every step."
    assert any(c.value == note for c in at.caption)
    assert ui_live.timeline_note(0, 10, 10) is None and ui_live.timeline_note(0, 24, 47) == (
        "Showing steps 0–23 of 47; **Step through this run** shows every step."
    )


def test_end_of_turn_tokens_read_as_the_end_mark_everywhere(tiny_trace):
    """Public report: with the baseline the result showed "…relationships.<|im_end|>": the evaluation
    model alone ended on a token the speculative trace never logged (a sampled run cut at its budget)."""
    end = "<|im_end|>"
    trace = copy.deepcopy(tiny_trace)
    assert fg.end_tokens(trace) == []  # the trace logged no end token
    base = {"text": "the cat sat." + end, "tokens": 4, "seconds": 0.5, "token_ids": [1, 2, 3, 0], "end_tokens": [end]}
    assert ui_live.readable_text(base["text"], trace, base["end_tokens"]) == "the cat sat." + fg.END_MARK
    assert ui_live.output_md([("a", "accepted", False), (end, "bonus", True)]).endswith(md_escape(fg.END_MARK))
    at = open_page("pages/live.py")
    at.session_state["live_result"] = {"key": "run:x", "number": 1, "trace": trace, "seconds": 1.0, "baseline": base}
    ok(at.run())
    shown = [t.value for t in at.text] + [m.value for m in at.markdown]
    assert "the cat sat." + fg.END_MARK in shown
    assert not any(end in v for v in shown)


def test_a_run_sized_to_this_machine_says_what_was_chosen(model_dirs, monkeypatch):
    from specviz.core.tree import TreeShape
    from specviz.run import treesize

    chosen = TreeShape("dynamic", nodes=2, depth=8, topk=1)  # one child per node: runs as a chain of 2
    monkeypatch.setattr(treesize, "size_tree", lambda t, d: treesize.Sizing(chosen, {1: 10.0, 8: 12.0}))
    monkeypatch.setattr(treesize, "race", lambda *a: {"predicted": 40.0, "chain": 30.0})  # it beats the chain of 4
    monkeypatch.setattr(live, "SIZINGS", {})
    monkeypatch.setattr(live, "PREDICTIONS", {})
    at = live_with(model_dirs, max_new=12)
    ok(at.selectbox(key="live_tree").set_value("auto").run())
    ok(at.button(key="live_run").click().run())
    trace = at.session_state["live_result"]["trace"]
    assert trace["meta"]["tree"]["kind"] == "chain" and trace["meta"]["gamma"] == 2
    assert any(c.value == md_escape(verdict.sized_words(trace) or "") for c in at.caption)
    assert "a chain of 2 drafts a step" in (verdict.sized_words(trace) or "")
