"""Traces for the pages (specviz/ui/traces.py) with AppTest: the shipped samples, links naming a
trace, no samples at all, and uploads (JSON, gzip, interrupted JSONL, broken or invalid files)."""

from __future__ import annotations

import copy
import gzip
import json

import pytest

from specviz.teach.player import step_heading
from specviz.trace import dumps
from specviz.ui import traces
from tests.apptestkit import ok, open_page, step_title

SAMPLES = list(traces.list_samples())


def test_the_shipped_samples_are_all_there():
    # the samples are committed: a missing one is a broken checkout, not a reason to skip
    assert {"greedy", "feature-greedy", "sampling-t0.7", "threshold", "prompt-lookup", "long"} <= set(SAMPLES)
    assert {"tree-greedy", "tree-sampling"} <= set(SAMPLES)


def test_the_feature_draft_sample_is_the_greedy_sample_in_other_steps():
    """Recorded with the real pair: the same prompt and settings, the same output, whichever draft ran."""
    standalone, feature = traces.load_sample("greedy"), traces.load_sample("feature-greedy")
    assert feature["meta"]["draft"]["kind"] == "feature" and standalone["meta"]["draft"]["kind"] == "model"
    assert feature["output"]["token_ids"] == standalone["output"]["token_ids"]


def test_sample_traces_are_valid_and_small():
    for name, path in traces.list_samples().items():
        trace = traces.load_sample(name)
        assert not isinstance(trace, str), trace
        assert path.stat().st_size < 1_000_000, name
    if {"long"} <= set(SAMPLES):
        assert len(traces.load_sample("long")["steps"]) >= 300


def test_pages_work_without_any_sample(monkeypatch, tmp_path):
    monkeypatch.setattr(traces, "SAMPLES_DIR", tmp_path)
    at = open_page()
    assert any("illustration" in m.value for m in at.markdown)
    ok(at.switch_page("pages/replay.py").run())
    assert any("No sample traces yet" in i.value for i in at.info)
    ok(at.switch_page("pages/stats.py").run())
    assert any("No sample traces yet" in i.value for i in at.info)


def test_an_unknown_trace_name_in_the_link_is_said():
    """Public report: ?trace=nope silently showed another trace."""
    at = open_page("pages/replay.py", trace="nope")
    assert any("no sample trace called “nope”" in w.value for w in at.warning)


def test_upload_json_gz_and_interrupted_jsonl(tiny_trace):
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("mine.json", dumps(tiny_trace).encode(), "application/json").run())
    assert at.selectbox(key="replay_trace").value.startswith("upload:")
    assert step_title(at) == step_heading(0, len(tiny_trace["steps"]))
    assert not at.error

    at = open_page("pages/replay.py")
    gz = gzip.compress(dumps(tiny_trace).encode())
    ok(at.file_uploader(key="replay_upload").upload("mine.json.gz", gz, "application/gzip").run())
    assert at.selectbox(key="replay_trace").value.startswith("upload:") and not at.error

    head = {k: v for k, v in tiny_trace.items() if k not in ("steps", "output")}
    lines = [json.dumps(head)] + [json.dumps(s) for s in tiny_trace["steps"][:4]]  # no output line: interrupted
    at = open_page("pages/replay.py")
    ok(at.file_uploader(key="replay_upload").upload("cut.jsonl", "\n".join(lines).encode(), "text/plain").run())
    assert not at.error
    assert step_title(at) == step_heading(0, 4)


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
