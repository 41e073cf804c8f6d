"""Every page headlessly with Streamlit's AppTest: samples, stepping, uploads, live decoding, errors."""

from __future__ import annotations

import ast
import copy
import gzip
import json
import re
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from specviz import figures as fg
from specviz import ui
from specviz.decoder import DecodeConfig
from specviz.drafters import ModelDrafter, NgramDrafter
from specviz.models import CausalLM
from specviz.record import Recording
from specviz.rules import make_rule
from specviz.trace import Trace, dumps, validate
from specviz.warp import Sampling
from tests.apptestkit import ok, open_page

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = list(ui.list_samples())
PROMPT = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]
HOSTILE = "<script>alert(1)</script>"


def plain(md: str) -> str:
    """Markdown shown as the reader sees it: the backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", md)


def step_title(at: AppTest) -> str:
    return next(h.value for h in at.subheader if h.value.startswith("Step "))


def button(at: AppTest, label: str) -> Button:
    return next(b for b in at.button if b.label == label)


@pytest.fixture(scope="module")
def tiny_trace(target: CausalLM, draft_lm: CausalLM) -> Trace:
    cfg = DecodeConfig(gamma=4, rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=30, seed=9)
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "the cat", cfg, prompt_ids=PROMPT).run()
    assert validate(trace) == [] and len(trace["steps"]) >= 5
    return trace


# ---------------------------------------------------------------- home


def test_home_renders_a_real_step_and_links_every_page():
    at = open_page()
    assert at.title[0].value.startswith("Speculative decoding")
    assert len(at.get("plotly_chart")) == 1
    links = {link.proto.page: link.proto.query_string for link in at.get("page_link")}
    assert set(links) == {"live", "replay", "stats"}
    if SAMPLES:
        assert links["replay"].startswith("trace=")  # straight to the drawn step
    assert any(plain(i.value).startswith("n_accepted = ") for i in at.info)


def test_pages_work_without_any_sample(monkeypatch, tmp_path):
    monkeypatch.setattr(ui, "SAMPLES_DIR", tmp_path)
    at = open_page()
    assert any("illustration" in m.value for m in at.markdown)
    ok(at.switch_page("pages/replay.py").run())
    assert any("No sample traces yet" in i.value for i in at.info)
    ok(at.switch_page("pages/stats.py").run())
    assert any("No sample traces yet" in i.value for i in at.info)


# ---------------------------------------------------------------- replay


def test_the_shipped_samples_are_all_there():
    # the samples are committed: a missing one is a broken checkout, not a reason to skip
    assert {"greedy", "feature-greedy", "sampling-t0.7", "threshold", "prompt-lookup", "long"} <= set(SAMPLES)
    assert {"tree-greedy", "tree-sampling"} <= set(SAMPLES)


def test_the_feature_draft_sample_is_the_greedy_sample_in_other_steps():
    """Recorded with the real pair: the same prompt and settings, the same output, whichever draft ran."""
    standalone, feature = ui.load_sample("greedy"), ui.load_sample("feature-greedy")
    assert feature["meta"]["draft"]["kind"] == "feature" and standalone["meta"]["draft"]["kind"] == "model"
    assert feature["output"]["token_ids"] == standalone["output"]["token_ids"]


@pytest.mark.parametrize("name", SAMPLES)
def test_replay_each_sample_steps_and_keeps_the_url(name):
    at = open_page("pages/replay.py", trace=name, step="3")
    n = len(ui.load_sample(name)["steps"])
    first = min(3, n - 1)
    assert step_title(at) == ui.step_heading(first, n)
    assert at.selectbox(key="replay_trace").value == f"sample:{name}"
    # acceptance, distributions, timeline; a tree step adds its tree and its attention mask
    assert len(at.get("plotly_chart")) == (5 if name.startswith("tree") else 3)
    if n > first + 1:
        ok(button(at, "Next").click().run())
        assert step_title(at) == ui.step_heading(first + 1, n)
        assert at.query_params["step"] == [str(first + 1)] or at.query_params["step"] == str(first + 1)
    ok(button(at, "Last").click().run())
    assert step_title(at) == ui.step_heading(n - 1, n)
    ok(button(at, "Prev").click().run())
    assert step_title(at) == ui.step_heading(max(0, n - 2), n)
    ok(button(at, "First").click().run())
    assert step_title(at) == ui.step_heading(0, n)
    if n > 2:
        ok(at.slider(key="replay_slider").set_value(n // 2).run())
        assert step_title(at) == ui.step_heading(n // 2, n)
    assert any(plain(i.value).startswith("n_accepted = ") for i in at.info)


def test_replay_play_toggles_and_distribution_position():
    at = open_page("pages/replay.py", trace=SAMPLES[0])
    ok(button(at, "Play").click().run())
    assert at.session_state["replay_playing"] is True
    ok(button(at, "Pause").click().run())
    assert at.session_state["replay_playing"] is False
    radio = at.radio(key="replay_dist_pos")
    if len(radio.options) > 1:
        before = radio.value
        want = 1 if before == 0 else 0  # decided before set_value, which changes radio.value in place
        ok(radio.set_value(want).run())
        assert at.radio(key="replay_dist_pos").value == want


def test_timeline_click_maps_to_a_step():
    assert ui.step_from_selection([{"x": 2, "y": 17, "curve_number": 0}]) == 17
    assert ui.step_from_selection([{"customdata": [4]}]) == 4
    assert ui.step_from_selection([{"x": 1}]) is None
    assert ui.step_from_selection([]) is None


def test_upload_json_gz_and_interrupted_jsonl(tiny_trace):
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("mine.json", dumps(tiny_trace).encode(), "application/json").run())
    assert at.selectbox(key="replay_trace").value.startswith("upload:")
    assert step_title(at) == ui.step_heading(0, len(tiny_trace["steps"]))
    assert not at.error
    ok(button(at, "Next").click().run())
    assert step_title(at).startswith("Step 1 of")

    at = open_page("pages/replay.py")
    gz = gzip.compress(dumps(tiny_trace).encode())
    ok(at.file_uploader(key="replay_upload").upload("mine.json.gz", gz, "application/gzip").run())
    assert at.selectbox(key="replay_trace").value.startswith("upload:") and not at.error

    head = {k: v for k, v in tiny_trace.items() if k not in ("steps", "output")}
    lines = [json.dumps(head)] + [json.dumps(s) for s in tiny_trace["steps"][:4]]  # no output line: interrupted
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("cut.jsonl", "\n".join(lines).encode(), "text/plain").run())
    assert not at.error
    assert step_title(at) == ui.step_heading(0, 4)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"format": "something-else", "version": 1}', "not a specviz trace"),
        (b"\x1f\x8b\x08\x00garbage", "damaged"),
        (b"", "empty"),
    ],
)
def test_upload_broken_file_shows_a_clear_error(data, message):
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("broken.json", data, "application/json").run())
    assert at.error and "Could not open this upload" in at.error[0].value
    assert message in at.error[0].value
    ok(at.run())  # the error stays while the file does, still without an exception
    assert at.error


def test_upload_semantically_wrong_trace_lists_the_problems(tiny_trace):
    bad = copy.deepcopy(tiny_trace)
    bad["steps"][1]["n_accepted"] = 99
    bad["steps"][2]["verify"][0]["p"] = 7.0
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("bad.json", dumps(bad).encode(), "application/json").run())
    text = at.error[0].value
    assert "not a valid specviz trace" in text and "step 1" in text and "step 2" in text


def test_hostile_token_text_is_never_interpreted(tiny_trace):
    evil = copy.deepcopy(tiny_trace)
    for step in evil["steps"]:
        for d in step["draft"]:
            d["token"] = HOSTILE
        if step["next"]:
            step["next"]["token"] = "**bold** [link](javascript:alert(1)) :red[x] $x$"
    evil["prompt"]["text"] = HOSTILE
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("evil.json", dumps(evil).encode(), "application/json").run())
    assert not at.error and not at.get("html")
    for md in [*at.markdown, *at.info]:
        assert "<script>" not in md.value
        assert "](javascript" not in md.value and "**bold**" not in md.value
    assert any("\\<script\\>" in md.value for md in at.markdown)


# ---------------------------------------------------------------- stats


@pytest.mark.parametrize("name", SAMPLES)
def test_stats_each_sample(name):
    at = open_page("pages/stats.py", trace=name)
    labels = [m.label for m in at.metric]
    assert {"steps", "α", "tokens / step", "cost ratio c", "ideal speedup", "measured speedup"} <= set(labels)
    assert len(at.get("plotly_chart")) == 4
    assert at.info  # the verdict in words
    assert at.query_params["trace"] in (name, [name])


def test_stats_follows_the_replay_choice(tiny_trace):
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("mine.json", dumps(tiny_trace).encode(), "application/json").run())
    ok(at.switch_page("pages/stats.py").run())
    assert at.selectbox(key="stats_trace").value.startswith("upload:")
    assert next(m for m in at.metric if m.label == "steps").value == str(len(tiny_trace["steps"]))


def test_stats_sets_apart_steps_that_drafted_nothing(target):
    # prompt lookup on a prompt with no repeated n-gram: the first steps propose nothing
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0.0), max_new_tokens=8)
    trace = Recording(target, NgramDrafter(target.vocab_size), "x", cfg, prompt_ids=[1, 2, 3, 4, 5, 6]).run()
    empty = sum(1 for st in trace["steps"] if not st["draft"])
    assert empty and validate(trace) == []
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("lookup.json", dumps(trace).encode(), "application/json").run())
    ok(at.switch_page("pages/stats.py").run())
    assert any(f"{empty} of {len(trace['steps'])} steps drafted nothing" in c.value for c in at.caption)


# ---------------------------------------------------------------- live decoding


def live_with(model_dirs: tuple[Path, Path], max_new: int = 12, rule: str = "greedy") -> AppTest:
    at = open_page("pages/live.py", timeout=180)
    ok(at.selectbox(key="live_preset").set_value(ui.CUSTOM).run())
    at.text_input(key="live_target").input(str(model_dirs[0]))
    at.text_input(key="live_draft").input(str(model_dirs[1]))
    at.radio(key="live_drafter").set_value(ui.DRAFT_MODEL)
    at.radio(key="live_chat").set_value("raw text")
    at.text_area(key="live_prompt").input("the cat sat on the mat the cat")
    at.selectbox(key="live_rule").set_value(rule)
    at.slider(key="live_temperature").set_value(0.0)
    at.number_input(key="live_max_new").set_value(max_new)
    return ok(at.run())


def test_live_decoding_with_tiny_models(model_dirs):
    at = live_with(model_dirs)
    at.checkbox(key="live_compare").check()
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
    assert any("identical" in c.value for c in at.caption)
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
    from specviz.feature_draft import save_head
    from tests.test_feature_draft import tiny_head

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
    assert any("Draft tree" in m.value for m in at.markdown)
    assert any("Tree attention mask" in m.value for m in at.markdown)
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
        ui.LiveSettings(top_p=0.0).config()


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


# ---------------------------------------------------------------- structure and safety


def test_markdown_escape_neutralises_everything():
    out = ui.md_escape("**b** _i_ [x](y) <b> :red[x] $x$ # h `c` \\")
    assert "**" not in out.replace("\\*", "") and "<b>" not in out and ":red[" not in out
    md = ui.tokens_md([(" the", "accepted"), ("\n", "correction"), ("]x[", "bonus")])
    assert md.count(":green-background[") == 1 and ":blue-background[⏎]" in md and "\\]x\\[" in md


def test_pages_are_thin_and_only_ui_imports_streamlit():
    for page in sorted((ROOT / "pages").glob("*.py")):
        tree = ast.parse(page.read_text())
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert len(funcs) == 1, page.name
        assert funcs[0].end_lineno - funcs[0].lineno < 100, page.name
    for module in sorted((ROOT / "specviz").rglob("*.py")):
        imports = {
            alias.name.split(".")[0]
            for node in ast.walk(ast.parse(module.read_text()))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
        }
        assert ("streamlit" in imports) == (module.name in ("ui.py", "learn_ui.py", "engine_ui.py")), module.name
    app = (ROOT / "app.py").read_text()
    assert all(f'url_path="{p}"' in app for p in ("", "live", "replay", "stats"))


def test_config_hides_tracebacks_and_keeps_xsrf():
    cfg = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert cfg["client"]["showErrorDetails"] == "none"
    assert cfg["server"]["enableXsrfProtection"] is True
    assert 1 <= cfg["server"]["maxUploadSize"] <= 200
    from streamlit import config

    config.get_config_options(force_reparse=True)
    assert config.get_option("client.showErrorDetails") == "none"


def test_sample_traces_are_valid_and_small():
    for name, path in ui.list_samples().items():
        trace = ui.load_sample(name)
        assert not isinstance(trace, str), trace
        assert path.stat().st_size < 1_000_000, name
    if {"long"} <= set(SAMPLES):
        assert len(ui.load_sample("long")["steps"]) >= 300


def test_an_unknown_trace_name_in_the_link_is_said():
    """Public report: ?trace=nope silently showed another trace."""
    at = open_page("pages/replay.py", trace="nope")
    assert any("no sample trace called “nope”" in w.value for w in at.warning)


def test_a_prompt_longer_than_the_model_reads_is_warned_about(model_dirs):
    """Public report: a prompt past the target's context length ran with no word about it."""
    at = live_with(model_dirs, max_new=2)
    at.text_area(key="live_prompt").input("the cat sat on the mat " * 120)  # ~720 tokens; the tiny model reads 512
    ok(at.button(key="live_run").click().run())
    assert any("reads at most 512" in w.value for w in at.warning)
