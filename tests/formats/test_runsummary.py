"""Run summaries: engine statistics (vLLM, SGLang, llama.cpp, TensorRT-LLM) read as aggregate records.

The samples in tests/data/engines/ were written by hand from each engine's source (see
docs/EVENTLOG.md, "Run summaries from serving engines"); the numbers in them are consistent, so
every derived value below is exact.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import pytest

from specviz.formats import runsummary
from specviz.formats.runsummary import (
    ENGINES,
    FORMAT,
    describe,
    load_summary,
    loads_summary,
    sniff_summary,
    summary_stats,
)
from specviz.trace import TraceError

DATA = Path(__file__).parents[1] / "data" / "engines"
VALID = Path(__file__).parents[1] / "data" / "valid"

# file -> (engine, expected values); per-position and histograms are compared with approx
EXPECTED: dict[str, tuple[str, dict[str, Any]]] = {
    "vllm_specdecode.log": (
        "vllm",
        {
            "source": runsummary.SRC_VLLM_LOG,
            "records": 3,
            "drafts": None,
            "draft_tokens": 900,
            "accepted_tokens": 555,
            "steps": None,
            "output_tokens": None,
            "per_position_acceptance": [245 / 300, 185 / 300, 125 / 300],
            "accepted_length_counts": None,
            "mean_acceptance_length": 2.85,
            "timings": {"accepted_tokens_per_s": 31.5, "drafted_tokens_per_s": 45.0},
        },
    ),
    "vllm_v0_speculative.log": (
        "vllm",
        {
            "source": runsummary.SRC_VLLM_V0_LOG,
            "records": 2,
            "drafts": 100,
            "draft_tokens": 400,
            "accepted_tokens": 240,
            "steps": 100,
            "output_tokens": 275,
            "per_position_acceptance": None,
            "accepted_length_counts": None,
            "mean_acceptance_length": 2.75,
            "timings": None,
        },
    ),
    "vllm_metrics.prom": (
        "vllm",
        {
            "source": runsummary.SRC_VLLM_PROM,
            "records": 6,
            "drafts": 300,
            "draft_tokens": 900,
            "accepted_tokens": 555,
            "steps": 300,
            "output_tokens": None,
            "per_position_acceptance": [245 / 300, 185 / 300, 125 / 300],
            "accepted_length_counts": [55, 60, 60, 125],
            "mean_acceptance_length": 2.85,
            "timings": None,
        },
    ),
    "vllm_response.json": (
        "vllm",
        {
            "source": runsummary.SRC_VLLM_RESPONSE,
            "records": 1,
            "drafts": 10,
            "draft_tokens": 30,
            "accepted_tokens": 17,
            "steps": 10,
            "output_tokens": 28,
            "per_position_acceptance": [0.8, 0.5, 0.4],
            "accepted_length_counts": [2, 3, 1, 4],
            "mean_acceptance_length": 2.7,
            "timings": None,
        },
    ),
    "sglang_generate.json": (
        "sglang",
        {
            "source": runsummary.SRC_SGLANG,
            "records": 2,
            "drafts": 30,
            "draft_tokens": 90,
            "accepted_tokens": 63,
            "steps": 30,
            "output_tokens": 95,
            "per_position_acceptance": [27 / 30, 22 / 30, 14 / 30],
            "accepted_length_counts": [3, 5, 8, 14],
            "mean_acceptance_length": 95 / 30,
            "timings": None,
        },
    ),
    "sglang_generate.jsonl": (
        "sglang",
        {
            "source": runsummary.SRC_SGLANG,
            "records": 2,
            "drafts": 10,
            "draft_tokens": 30,
            "accepted_tokens": 13,
            "steps": 10,
            "output_tokens": 25,
            "per_position_acceptance": [0.8, 0.4, 0.1],
            "accepted_length_counts": [2, 4, 3, 1],
            "mean_acceptance_length": 2.5,
            "timings": None,
        },
    ),
    "llamacpp_completion.json": (
        "llama.cpp",
        {
            "source": runsummary.SRC_LLAMA_TIMINGS,
            "records": 1,
            "drafts": None,
            "draft_tokens": 96,
            "accepted_tokens": 72,
            "steps": None,
            "output_tokens": 120,
            "per_position_acceptance": None,
            "accepted_length_counts": None,
            "mean_acceptance_length": None,
            "timings": {
                "prompt_ms": 25.5,
                "prompt_tokens_per_s": 15 / 25.5 * 1000,
                "predicted_ms": 1500.0,
                "predicted_tokens_per_s": 80.0,
            },
        },
    ),
    "llamacpp_chat.sse": (
        "llama.cpp",
        {
            "source": runsummary.SRC_LLAMA_TIMINGS,
            "records": 1,
            "draft_tokens": 48,
            "accepted_tokens": 30,
            "output_tokens": 40,
            "mean_acceptance_length": None,
            "timings": {
                "prompt_ms": 40.0,
                "prompt_tokens_per_s": 400.0,
                "predicted_ms": 500.0,
                "predicted_tokens_per_s": 80.0,
            },
        },
    ),
    "llamacpp_speculative_simple.txt": (
        "llama.cpp",
        {
            "source": runsummary.SRC_LLAMA_EXAMPLE,
            "records": 1,
            "drafts": None,
            "draft_tokens": 320,
            "accepted_tokens": 200,
            "steps": None,
            "output_tokens": 257,
            "mean_acceptance_length": None,
            "timings": {
                "encode_ms": 42.0,
                "encode_tokens_per_s": 428.571,
                "decode_ms": 2570.0,
                "decode_tokens_per_s": 100.0,
            },
        },
    ),
    "trtllm_chat.json": (
        "tensorrt-llm",
        {
            "source": runsummary.SRC_TRT,
            "records": 1,
            "drafts": 20,
            "draft_tokens": 60,
            "accepted_tokens": 34,
            "steps": 20,
            "output_tokens": 55,
            "per_position_acceptance": [0.75, 0.55, 0.4],
            "accepted_length_counts": [5, 4, 3, 8],
            "mean_acceptance_length": 2.7,
            "timings": None,
        },
    ),
}


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, float):
        return isinstance(got, float) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(want, list):
        return (
            isinstance(got, list) and len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_same(got[k], want[k]) for k in want)
    return got == want and type(got) is type(want)


def _error(data: bytes | str, name: str = "run.txt", **kw: Any) -> str:
    with pytest.raises(TraceError) as info:
        loads_summary(data, name, **kw)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(name), msg
    return msg


# ---------------------------------------------------------------- the samples


@pytest.mark.parametrize("fname", sorted(EXPECTED))
def test_sample_is_read_with_exact_numbers(fname: str) -> None:
    engine, want = EXPECTED[fname]
    rs = load_summary(DATA / fname)
    assert rs["format"] == FORMAT and rs["engine"] == engine and rs["name"] == fname
    for key, value in want.items():
        assert _same(rs[key], value), (key, rs[key], value)
    assert runsummary.NO_STEPPING in rs["missing"]
    json.dumps(rs, allow_nan=False)  # JSON-safe, no NaN anywhere
    assert all(v is None or isinstance(v, (str, int, float, bool)) for v in rs["fields"].values())


@pytest.mark.parametrize("fname", sorted(EXPECTED))
def test_sniff_names_the_engine_and_gzip_reads_the_same(fname: str) -> None:
    raw = (DATA / fname).read_bytes()
    engine = EXPECTED[fname][0]
    assert engine in ENGINES
    assert sniff_summary(raw, fname) == engine
    assert sniff_summary(raw.decode()) == engine
    packed = gzip.compress(raw, mtime=0)
    assert sniff_summary(packed) == engine
    a, b = loads_summary(raw, fname), loads_summary(packed, fname)
    assert a == b


def test_sniff_says_none_for_traces_event_logs_and_junk() -> None:
    for path in sorted(VALID.iterdir()):
        assert sniff_summary(path.read_bytes(), path.name) is None, path
    assert sniff_summary(b"step,position,draft_token\n0,0,a\n") is None
    assert sniff_summary(bytes(range(256)) * 10) is None
    assert sniff_summary(b"\x1f\x8b\x08garbage") is None
    assert sniff_summary(memoryview(b"SpecDecoding metrics: Accepted: 1 tokens")) == "vllm"
    assert sniff_summary(12345) is None  # type: ignore[arg-type]  # never raises


def test_stats_match_the_trace_summary_names() -> None:
    st = summary_stats(load_summary(DATA / "vllm_metrics.prom"))
    assert st["acceptance_rate"] == pytest.approx(555 / 900)
    assert st["mean_accepted"] == pytest.approx(555 / 300)
    assert st["tokens_per_step"] == pytest.approx(2.85)
    assert (st["drafted"], st["accepted"], st["steps"], st["tokens"]) == (900, 555, 300, None)
    assert st["accepted_length_counts"] == [55, 60, 60, 125]
    # the log lines give no draft count, but vLLM defines mean acceptance length as 1 + accepted / drafts
    log = summary_stats(load_summary(DATA / "vllm_specdecode.log"))
    assert log["mean_accepted"] == pytest.approx(1.85) and log["steps"] is None
    # SGLang's accept length counts output tokens per verify step: mean_accepted comes from the counts
    sg = summary_stats(load_summary(DATA / "sglang_generate.json"))
    assert sg["mean_accepted"] == pytest.approx(63 / 30) and sg["tokens_per_step"] == pytest.approx(95 / 30)
    lc = summary_stats(load_summary(DATA / "llamacpp_completion.json"))
    assert lc["acceptance_rate"] == 0.75 and lc["mean_accepted"] is None and lc["tokens_per_step"] is None


def test_nothing_drafted_is_undefined_not_zero() -> None:
    body = {"content": "x", "timings": {"prompt_n": 3, "prompt_ms": 1.0, "predicted_n": 5, "predicted_ms": 10.0}}
    rs = loads_summary(json.dumps(body), "plain.json")
    assert (rs["draft_tokens"], rs["accepted_tokens"]) == (0, 0)
    st = summary_stats(rs)
    assert st["acceptance_rate"] is None and st["mean_accepted"] is None
    assert any("drafted nothing" in m for m in rs["missing"])
    prom = "vllm:spec_decode_num_drafts_total 0\nvllm:spec_decode_num_draft_tokens_total 0\nvllm:spec_decode_num_accepted_tokens_total 0\n"
    st = summary_stats(loads_summary(prom, "zero.prom"))
    assert st["acceptance_rate"] is None and st["mean_accepted"] is None and st["mean_acceptance_length"] is None
    # a vLLM interval without drafts prints nan rates: read as "no value", not refused
    line = (
        "INFO x SpecDecoding metrics: Mean acceptance length: nan, Accepted throughput: 0.00 tokens/s, "
        "Drafted throughput: 0.00 tokens/s, Accepted: 0 tokens, Drafted: 0 tokens, "
        "Per-position acceptance rate: nan, nan, Avg Draft acceptance rate: nan%\n"
    )
    st = summary_stats(loads_summary(line, "idle.log"))
    assert st["acceptance_rate"] is None and st["mean_acceptance_length"] is None


def test_describe_says_what_was_read_and_what_is_missing() -> None:
    lines = describe(load_summary(DATA / "vllm_response.json"))
    text = "\n".join(lines)
    assert all(isinstance(x, str) and "\n" not in x for x in lines)
    assert "bonus token included" in text and "56.7%" in text and "cannot be stepped through" in text
    assert "Steps by number of drafts accepted: 0: 2, 1: 3, 2: 1, 3: 4" in text
    assert "prefill" in "\n".join(describe(load_summary(DATA / "sglang_generate.json")))


# ---------------------------------------------------------------- other shapes of the same formats


def test_v1_log_variants() -> None:
    old = "INFO SpecDecoding metrics: Draft acceptance rate: 50.0%, Accepted: 5 tokens, Drafted: 10 tokens\n"
    rs = loads_summary(old, "old.log")
    assert (rs["draft_tokens"], rs["accepted_tokens"], rs["mean_acceptance_length"]) == (10, 5, None)
    assert rs["fields"]["Avg Draft acceptance rate % (last line)"] == 50.0
    good = (DATA / "vllm_specdecode.log").read_text()
    cut = good + "INFO 03-14 09:27:23 [metrics.py:96] SpecDecoding metrics: Mean acceptance length: 2.0"
    rs = loads_summary(cut, "cut.log")
    assert rs["records"] == 3 and any("cut off" in m for m in rs["missing"])


def test_jsonl_stream_and_batch_shapes() -> None:
    one = json.loads((DATA / "sglang_generate.json").read_text())
    jsonl = "\n".join(json.dumps(r) for r in one) + "\n"
    assert loads_summary(jsonl, "a.jsonl")["accepted_tokens"] == 63
    cut = jsonl + json.dumps(one[0])[:50]
    rs = loads_summary(cut, "cut.jsonl")
    assert rs["records"] == 2 and any("cut off" in m for m in rs["missing"])
    # a streamed llama.cpp reply with timings on every chunk (cumulative): the last one counts
    chunks = []
    for n, (d, a) in enumerate([(8, 5), (16, 11), (24, 15)]):
        t = {
            "prompt_n": 4,
            "prompt_ms": 2.0,
            "predicted_n": 10 * (n + 1),
            "predicted_ms": 50.0 * (n + 1),
            "draft_n": d,
            "draft_n_accepted": a,
        }
        chunks.append("data: " + json.dumps({"id": "c1", "choices": [], "timings": t}))
    rs = loads_summary("\n\n".join([*chunks, "data: [DONE]"]) + "\n", "s.sse")
    assert (rs["records"], rs["draft_tokens"], rs["accepted_tokens"], rs["output_tokens"]) == (1, 24, 15, 30)
    # vLLM: a response whose statistics are null (n > 1) is counted, not summed
    resp = json.loads((DATA / "vllm_response.json").read_text())
    off = dict(resp, metrics={"speculative_decoding": None})
    rs = loads_summary(json.dumps([resp, off, resp]), "v.json")
    assert rs["records"] == 2 and rs["accepted_tokens"] == 34 and rs["fields"]["responses with null statistics"] == 1
    sparse = json.loads(json.dumps(resp))
    sparse["metrics"]["speculative_decoding"]["acceptance_histogram"] = {"0": 2, "1": 3, "2": 1, "3": 4}
    assert loads_summary(json.dumps(sparse), "s.json")["accepted_length_counts"] == [2, 3, 1, 4]


def test_trtllm_without_counts_and_sglang_without_histogram() -> None:
    resp = json.loads((DATA / "trtllm_chat.json").read_text())
    del resp["choices"][0]["speculative_decoding"]
    rs = loads_summary(json.dumps(resp), "avg.json")
    assert rs["source"] == runsummary.SRC_TRT_AVG and rs["mean_acceptance_length"] == 2.7 and rs["draft_tokens"] is None
    old = {"text": "x", "meta_info": {"completion_tokens": 12, "spec_verify_ct": 4}}
    rs = loads_summary(json.dumps(old), "old.json")
    assert (rs["steps"], rs["draft_tokens"], rs["mean_acceptance_length"]) == (4, None, 3.0)
    assert summary_stats(rs)["acceptance_rate"] is None


# ---------------------------------------------------------------- hostile and broken input


def _sub(fname: str, old: str, new: str) -> str:
    text = (DATA / fname).read_text()
    assert old in text, old
    return text.replace(old, new, 1)


BROKEN = [
    ("vllm_specdecode.log", "Accepted: 180 tokens", "Accepted: -180 tokens", ["line 3", "'Accepted'"]),
    ("vllm_specdecode.log", "Accepted: 180 tokens", "Accepted: 400 tokens", ["line 3", "'Accepted'", "more than"]),
    (
        "vllm_specdecode.log",
        "Mean acceptance length: 2.80",
        "Mean acceptance length: nan",
        ["line 3", "Mean acceptance length"],
    ),
    ("vllm_specdecode.log", "0.800, 0.600", "1.800, 0.600", ["line 3", "Per-position acceptance rate[1]"]),
    ("vllm_specdecode.log", ", Drafted: 150 tokens", "", ["line 6", "'Drafted'", "missing"]),
    (
        "vllm_v0_speculative.log",
        "accepted tokens: 240",
        "accepted tokens: 401",
        ["line 4", "Number of accepted tokens"],
    ),
    ("vllm_metrics.prom", "} 900.0", "} NaN", ["line 12", "num_draft_tokens"]),
    ("vllm_metrics.prom", "} 900.0", "} -900.0", ["line 12", "num_draft_tokens"]),
    ("vllm_metrics.prom", "} 900.0", "} 900.5", ["line 12", "whole number"]),
    ("vllm_metrics.prom", "} 900.0", "} 1e30", ["line 12", "num_draft_tokens"]),
    ("vllm_metrics.prom", '"} 185.0', '"} 285.0', ["num_accepted_tokens_per_pos", "must not grow"]),
    ("vllm_metrics.prom", 'position="2"', 'position="1"', ["line 20", "twice"]),
    ("vllm_metrics.prom", 'position="2"', 'position="x"', ["line 20", "'position'"]),
    (
        "vllm_response.json",
        '"num_draft_tokens": 30',
        '"num_draft_tokens": "30"',
        ["line 1", "num_draft_tokens", "whole number"],
    ),
    (
        "vllm_response.json",
        '"num_draft_tokens": 30',
        '"num_draft_tokens": 12',
        ["num_accepted_draft_tokens", "more than"],
    ),
    ("vllm_response.json", '"num_draft_tokens": 30', '"num_draft_tokens": true', ["num_draft_tokens"]),
    (
        "vllm_response.json",
        '[2, 3, 1, 4],\n      "acceptance_histogram_by',
        '[2, 3, 1, 5],\n      "acceptance_histogram_by',
        ["acceptance_histogram", "steps"],
    ),
    (
        "vllm_response.json",
        "[3, 1, 0, 3, 2, 1, 3, 0, 1, 3]",
        "[3, 1, 0, 3, 2, 1, 3, 0, 1]",
        ["per_step_accepted", "entries"],
    ),
    (
        "vllm_response.json",
        '"draft_acceptance_rate": 0.5666666666666667',
        '"draft_acceptance_rate": 1.5',
        ["draft_acceptance_rate"],
    ),
    ("vllm_response.json", '"num_spec_steps": 10', '"num_spec_steps": NaN', ["line 1", "NaN"]),
    (
        "sglang_generate.json",
        '"spec_verify_ct": 10',
        '"spec_verify_ct": -10',
        ["line 11", "meta_info.spec_verify_ct", ">= 0"],
    ),
    ("sglang_generate.json", '"spec_verify_ct": 10', '"spec_verify_ct": 1e400', ["line 11", "too large"]),
    ("sglang_generate.json", '"spec_verify_ct": 10', '"spec_verify_ct": ' + "9" * 200, ["line 11", "digits"]),
    (
        "sglang_generate.json",
        '"spec_verify_ct": 10',
        '"spec_verify_ct": 100000000000000000000',
        ["line 11", "too large"],
    ),
    (
        "sglang_generate.json",
        '"spec_accept_rate": 0.6666666666666666',
        '"spec_accept_rate": 2',
        ["line 11", "spec_accept_rate"],
    ),
    (
        "sglang_generate.json",
        '"spec_accepted_drafts": 43',
        '"spec_accepted_drafts": 61',
        ["line 2", "spec_accepted_drafts", "more than"],
    ),
    ("sglang_generate.json", "[1, 2, 3, 4]", "[1, 2, 3.5, 4]", ["line 11", "spec_accept_histogram[2]"]),
    (
        "sglang_generate.jsonl",
        '"spec_accepted_drafts": 4,',
        '"spec_accepted_drafts": 5,',
        ["line 2", "spec_accepted_drafts", "disagrees"],
    ),
    (
        "llamacpp_completion.json",
        '"draft_n_accepted":72',
        '"draft_n_accepted":97',
        ["line 1", "timings.draft_n_accepted"],
    ),
    ("llamacpp_completion.json", '"predicted_ms":1500.0', '"predicted_ms":-1500.0', ["line 1", "timings.predicted_ms"]),
    ("llamacpp_completion.json", '"predicted_n":120,', "", ["line 1", "timings.predicted_n", "missing"]),
    ("llamacpp_speculative_simple.txt", "n_accept  = 200", "n_accept  = 400", ["line 13", "n_accept", "more than"]),
    ("llamacpp_speculative_simple.txt", "n_accept  = 200", "n_accept  = -2", ["line 13", "n_accept"]),
    ("llamacpp_speculative_simple.txt", "accept    = 62.500%", "accept    = 162.500%", ["line 14", "accept"]),
    ("trtllm_chat.json", "[5, 4, 3, 8]", "[5, 4, 3, 9]", ["line 1", "acceptance_histogram"]),
    (
        "trtllm_chat.json",
        '"total_draft_tokens": 60',
        '"total_draft_tokens": 61',
        ["line 1", "total_draft_tokens", "exceeds 20 steps x 3"],
    ),
]


@pytest.mark.parametrize(("fname", "old", "new", "parts"), BROKEN, ids=[f"{b[0]}:{b[2][:24]}" for b in BROKEN])
def test_broken_variant_gives_one_line_naming_line_and_field(fname: str, old: str, new: str, parts: list[str]) -> None:
    msg = _error(_sub(fname, old, new), fname)
    for part in parts:
        assert part in msg, (part, msg)


def test_truncated_binary_empty_and_oversized_files() -> None:
    whole = (DATA / "trtllm_chat.json").read_text()
    assert "not valid JSON" in _error(whole[: len(whole) // 2], "cut.json")
    arr = (DATA / "sglang_generate.json").read_text()
    assert "line" in _error(arr[: arr.rindex("]")], "cut.json")
    assert "not UTF-8" in _error(bytes(range(256)) * 4, "bin.dat")
    assert "NUL" in _error(b"\x00\x00SpecDecoding metrics: Accepted: 1 tokens, Drafted: 2 tokens", "nul.log")
    assert "empty" in _error(b"  \n", "empty.log")
    assert "limit" in _error((DATA / "vllm_specdecode.log").read_bytes(), "big.log", max_bytes=500)
    bomb = gzip.compress(b"SpecDecoding metrics: " + b" " * 200_000)
    assert "decompresses to more than" in _error(bomb, "bomb.log.gz", max_bytes=100_000)
    assert "damaged" in _error(b"\x1f\x8b" + b"\x00" * 40, "bad.gz")
    assert "nested too deeply" in _error("[" * 100_000, "deep.json")
    with pytest.raises(TraceError, match="cannot read"):
        load_summary(DATA / "no-such-file.log")


def test_unknown_files_name_the_accepted_kinds() -> None:
    msg = _error(json.dumps({"hello": 1}), "x.json")
    assert "vLLM" in msg and "SGLang" in msg and "llama.cpp" in msg and "TensorRT-LLM" in msg
    assert "specviz trace" in _error((VALID / "tiny.json").read_bytes(), "tiny.json")
    assert "none of the formats" in _error("just some words\n", "words.txt")
    assert "none of the formats" in _error(
        (Path(__file__).parents[1] / "data/broken_eventlog/q_above_one.csv").read_bytes(), "e.csv"
    )
    mixed = [json.loads((DATA / "vllm_response.json").read_text()), json.loads((DATA / "trtllm_chat.json").read_text())]
    assert "one engine" in _error(json.dumps(mixed), "mixed.json")
    both = (DATA / "vllm_specdecode.log").read_text() + (DATA / "vllm_v0_speculative.log").read_text()
    assert "keep one server run" in _error(both, "both.log")
    prom = (
        (DATA / "vllm_metrics.prom")
        .read_text()
        .replace('model_name="tiny-target",position="2"', 'model_name="other",position="2"')
    )
    assert "models" in _error(prom, "two.prom")
    assert "num_accepted_tokens" in _error("vllm:spec_decode_num_draft_tokens_total 3\n", "one.prom")


def test_record_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (runsummary, runsummary._json, runsummary.vllm, runsummary.trtllm):  # each binds the limit it reads
        monkeypatch.setattr(module, "MAX_RECORDS", 2)
    assert "more than 2" in _error((DATA / "vllm_specdecode.log").read_text(), "many.log")
    line = json.dumps(json.loads((DATA / "llamacpp_completion.json").read_text()))
    assert "more than 2" in _error("\n".join([line] * 4) + "\n", "many.jsonl")


def test_mangled_samples_raise_only_trace_error() -> None:
    """Cuts and byte flips of every sample: a summary or a TraceError, never anything else."""
    for path in sorted(DATA.iterdir()):
        raw = path.read_bytes()
        variants = [raw[:i] for i in range(1, len(raw), max(1, len(raw) // 23))]
        for i in range(0, len(raw), max(1, len(raw) // 29)):
            for b in (b"-", b"9", b'"', b"\xff", b"{"):
                variants.append(raw[:i] + b + raw[i + 1 :])
        for v in variants:
            try:
                rs = loads_summary(v, path.name)
            except TraceError as exc:
                assert "\n" not in str(exc)
            else:
                json.dumps(rs, allow_nan=False)
                summary_stats(rs)
                describe(rs)
