"""`python -m specviz record | validate | summarize`, mostly in-process for speed, twice for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest

import specviz.cli.record
from specviz.cli.commands import main
from specviz.trace import load, validate

ROOT = Path(__file__).parents[2]
BROKEN = Path(__file__).parents[1] / "data" / "broken"
EXPECTED: dict[str, str] = json.loads((BROKEN / "EXPECTED.json").read_text())
VALID = Path(__file__).parents[1] / "data" / "valid"


def cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    """Run main() in-process; argparse's own exits count as return codes."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "specviz", *map(str, argv)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def tiny(model_dirs: tuple[Path, Path], *extra: str | Path) -> list[str | Path]:
    target, draft = model_dirs
    base: list[str | Path] = ["record", "--target", target, "--draft", draft, "--no-chat", "--device", "cpu"]
    return [*base, "--gamma", "3", "--max-new-tokens", "8", *extra]


# ---------------------------------------------------------------- validate


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_broken_file(capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = BROKEN / name
    rc, out, err = cli(capsys, "validate", path)
    assert rc == 1 and err == ""
    lines = out.splitlines()
    assert lines and all(line.startswith(f"{path}: ") for line in lines)
    assert any(EXPECTED[name] in line for line in lines), lines


def test_validate_valid_files(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = cli(capsys, "validate", VALID / "tiny.json", VALID / "interrupted.jsonl")
    assert rc == 0
    assert out.splitlines()[0] == f"{VALID / 'tiny.json'}: valid (5 steps, 10 tokens, max_new_tokens)"
    assert "rebuilt from the steps of an interrupted run" in out.splitlines()[1]


def test_validate_mixed_files_fails(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = cli(capsys, "validate", VALID / "tiny.json", BROKEN / "empty.json", BROKEN / "missing.json")
    assert rc == 1
    assert ": valid" in out and "empty.json: is empty" in out and "cannot read" in out


def test_validate_minimal_accepts_what_the_app_replays(capsys: pytest.CaptureFixture[str]) -> None:
    files = (VALID / "minimal.json", ROOT / "assets" / "example-eventlog.csv")
    rc, out, _ = cli(capsys, "validate", *files)
    assert rc == 1  # strict: they lack what `record` writes, and the CLI says what to do
    assert all(f"{f}: (a valid minimal trace or event log" in out for f in files)
    rc, out, _ = cli(capsys, "validate", "--minimal", *files)
    assert rc == 0 and [line.split(": ")[1][:5] for line in out.splitlines()] == ["valid", "valid"]


def test_validate_minimal_still_checks_decisions(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    t = load(VALID / "minimal.json")
    t["steps"][0]["n_accepted"] = len(t["steps"][0]["draft"]) + 1
    (tmp_path / "m.json").write_text(json.dumps(t))
    rc, out, _ = cli(capsys, "validate", "--minimal", tmp_path / "m.json")
    assert rc == 1 and "n_accepted" in out and "--minimal" not in out


def test_validate_caps_the_problem_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    t = load(VALID / "tiny.json")
    for s in t["steps"]:
        for v in s["verify"]:
            v["p"] = 2.0
            v["top"] = "nope"
    (tmp_path / "t.json").write_text(json.dumps(t))
    rc, out, _ = cli(capsys, "validate", tmp_path / "t.json")
    assert rc == 1 and out.splitlines()[-1].endswith("(only the first 20 problems are shown)")


def test_validate_subprocess_never_shows_a_traceback() -> None:
    files = sorted(p for p in BROKEN.iterdir() if p.name != "EXPECTED.json")
    proc = run("validate", VALID / "tiny.json", *files)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr == ""
    for f in files:
        assert f"{f}: " in proc.stdout
    assert f"{VALID / 'tiny.json'}: valid" in proc.stdout


# ---------------------------------------------------------------- summarize


def test_summarize_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = cli(capsys, "summarize", VALID / "tiny.json")
    assert rc == 0
    assert out.splitlines()[0] == "tiny-target <- tiny-draft, gamma 3, rule sampling"
    for label in (
        "tokens per step",
        "alpha (per test)",
        "drafts kept",
        "mean accepted",
        "per position",
        "accepted lengths",
        "time",
    ):
        assert label in out
    rc, out, _ = cli(capsys, "summarize", "--json", VALID / "tiny.json")
    s = json.loads(out)
    assert rc == 0 and s["steps"] == 5 and s["tokens"] == 10 and len(s["per_position_acceptance"]) == 3


def test_summarize_refuses_invalid_traces(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "summarize", BROKEN / "n_accepted_mismatch.json")
    assert rc == 1 and out == "" and len(err.splitlines()) == 1 and "run `validate`" in err
    rc, out, err = cli(capsys, "summarize", BROKEN / "deep_nesting.json")
    assert rc == 1 and "nested too deeply" in err


# ---------------------------------------------------------------- record


def test_record_with_a_model_draft(
    capsys: pytest.CaptureFixture[str], model_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "a.json"
    rc, _, err = cli(capsys, *tiny(model_dirs, "--prompt", "the cat sat on the mat", "--seed", "3", "-o", out))
    assert rc == 0, err
    t = load(out)
    assert validate(t) == []
    m = t["meta"]
    assert (m["target"]["name"], m["draft"]["kind"], m["gamma"], m["seed"], m["chat"]) == (
        "target",
        "model",
        3,
        3,
        False,
    )
    assert t["prompt"]["text"] == "the cat sat on the mat" and len(t["output"]["token_ids"]) == 8
    assert f"wrote {out}: " in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "policy"),
    [
        (["--adaptive"], {"name": "heuristic", "start": 3, "max": 3, "confidence": 0.4}),  # the default stop
        (["--adaptive", "--confidence", "0"], {"name": "heuristic", "start": 3, "max": 3, "confidence": None}),
        (["--adaptive", "--confidence", "0.3"], {"name": "heuristic", "confidence": 0.3}),
        (["--confidence", "0.5"], {"name": "constant", "start": 3, "confidence": 0.5}),
        ([], {"name": "constant", "start": 3, "confidence": 0.4}),
        (["--confidence", "0"], None),
    ],
)
def test_record_gamma_policy_options(
    capsys: pytest.CaptureFixture[str], model_dirs: tuple[Path, Path], tmp_path: Path, extra: list[str], policy: dict
) -> None:
    out = tmp_path / "a.json"
    rc, _, err = cli(capsys, *tiny(model_dirs, "--prompt", "the cat sat on the mat", *extra, "-o", out))
    assert rc == 0, err
    t = load(out)
    assert validate(t) == []
    logged = t["meta"].get("gamma_policy")
    if policy is None:
        assert logged is None
    else:
        assert logged is not None and policy.items() <= logged.items()


@pytest.mark.parametrize("suffix", [".json.gz", ".jsonl"])
def test_record_ngram_greedy_to_gz_and_jsonl(
    capsys: pytest.CaptureFixture[str], model_dirs: tuple[Path, Path], tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"b{suffix}"
    argv = tiny(model_dirs, "--prompt", "the cat sat on the cat sat on the", "--rule", "greedy", "--temperature", "0")
    argv[4] = "ngram"  # --draft ngram
    rc, _, err = cli(capsys, *argv, "-o", out)
    assert rc == 0, err
    raw = out.read_bytes()
    assert raw[:2] == b"\x1f\x8b" if suffix == ".json.gz" else len(raw.splitlines()) >= 3
    t = load(out)
    assert validate(t) == [] and t["meta"]["draft"]["kind"] == "ngram" and t["meta"]["rule"]["name"] == "greedy"


def test_nothing_drafted_reads_as_undefined_not_rejected(
    capsys: pytest.CaptureFixture[str], model_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    """Public report: a run that drafted nothing summarized as "acceptance 0.0%, alpha 0.000"."""
    out = tmp_path / "q.json"
    argv = tiny(model_dirs, "--prompt", "Q", "--rule", "greedy", "--temperature", "0", "--max-new-tokens", "2")
    argv[4] = "ngram"
    rc, _, err = cli(capsys, *argv, "-o", out)
    assert rc == 0, err
    assert all(not s["draft"] for s in load(out)["steps"])
    rc, text, _ = cli(capsys, "summarize", out)
    assert rc == 0 and "0.0%" not in text and "0.000" not in text
    assert "alpha (per test)    n/a" in text and "nothing was drafted" in text and "prompt lookup" in text
    rc, js, _ = cli(capsys, "summarize", "--json", out)
    s = json.loads(js)
    assert (s["acceptance_rate"], s["alpha"], s["mean_accepted"], s["drafted"]) == (None, None, None, 0)


def test_record_lossy_rules_keep_their_parameters(
    capsys: pytest.CaptureFixture[str], model_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    for rule, params, want in (
        ("threshold", ["--tau", "0.5"], {"tau": 0.5}),
        ("typical", ["--epsilon", "0.2", "--delta", "0.4"], {"epsilon": 0.2, "delta": 0.4}),
    ):
        out = tmp_path / f"{rule}.json"
        rc, _, err = cli(capsys, *tiny(model_dirs, "--prompt", "a red dog", "--rule", rule, *params, "-o", out))
        assert rc == 0, err
        t = load(out)
        assert t["meta"]["rule"]["params"] == want and validate(t) == []


def test_record_prompt_file_writes_a_directory(
    capsys: pytest.CaptureFixture[str], model_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the cat sat\n\n  \nthe dog ran to the tree\r\n")
    out = tmp_path / "traces"
    rc, _, err = cli(capsys, *tiny(model_dirs, "--prompt-file", prompts, "-o", out))
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["000.json", "001.json"]
    texts = [load(out / f"{i:03d}.json")["prompt"]["text"] for i in range(2)]
    assert texts == ["the cat sat", "the dog ran to the tree"]
    assert all(validate(load(p)) == [] for p in out.iterdir())


def test_record_interrupted_keeps_the_partial_trace(
    capsys: pytest.CaptureFixture[str], model_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"n": 0}

    def ctrl_c(*_: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(specviz.cli.record, "_progress", ctrl_c)
    for suffix in (".json", ".jsonl"):
        calls["n"] = 0
        out = tmp_path / f"partial{suffix}"
        argv = tiny(model_dirs, "--prompt", "the cat sat", "--max-new-tokens", "40", "-o", out)
        rc, _, err = cli(capsys, *argv)
        assert rc == 130 and "interrupted: wrote the partial trace" in err
        t = load(out)
        assert len(t["steps"]) == 2 and t["output"]["stop_reason"] == "stopped" and validate(t) == []


@pytest.mark.parametrize("suffix", [".json", ".json.gz", ".jsonl"])
@pytest.mark.parametrize("bad_step", [0, 2])
def test_a_failed_run_leaves_no_broken_file(
    capsys: pytest.CaptureFixture[str],
    model_dirs: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
    bad_step: int,
) -> None:
    """Public report: a NaN step failed the JSON write (exit 1) and left a .jsonl half-written."""
    import specviz.run.record

    real = specviz.run.record.speculative_decode

    def nan_at_step(*args: object, **kw: object):
        for step in real(*args, **kw):
            if step["index"] == bad_step:
                step["timing_ms"]["verify"] = float("nan")
            yield step

    monkeypatch.setattr(specviz.run.record, "speculative_decode", nan_at_step)
    out = tmp_path / f"t{suffix}"
    out.write_text("an older file")  # kept when nothing new can be written
    rc, _, err = cli(capsys, *tiny(model_dirs, "--prompt", "the cat sat", "--max-new-tokens", "40", "-o", out))
    assert rc == 1 and "error: the run failed: ValueError" in err and "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ([out.name] if out.exists() else [])  # no temporary files
    if bad_step == 0:
        assert "no trace was written" in err
        assert not out.exists() if suffix == ".jsonl" else out.read_text() == "an older file"
    else:
        assert f"kept the 2 finished steps in {out}" in err
        t = load(out)
        assert len(t["steps"]) == 2 and t["output"]["stop_reason"] == "stopped" and validate(t) == []


BAD_ARGS = [
    (["--gamma", "-1"], "argument --gamma: must be >= 1, got -1"),
    (["--gamma", "0"], "argument --gamma: must be >= 1"),
    (["--gamma", "two"], "argument --gamma: expected an integer"),
    (["--top-p", "0"], "top_p must be in (0, 1]"),
    (["--top-p", "1.5"], "top_p must be in (0, 1]"),
    (["--temperature", "nan"], "argument --temperature: must be a finite number"),
    (["--temperature", "-1"], "temperature must be a finite number >= 0"),
    (["--max-new-tokens", "0"], "argument --max-new-tokens: must be >= 1"),
    (["--seed", "-3"], "argument --seed: must be >= 0"),
    (["--log-top-k", "0"], "argument --log-top-k: must be >= 1"),
    (["--tau", "0.5"], "rule 'sampling' takes no parameter 'tau'"),
    (["--rule", "threshold", "--tau", "-1"], "tau must be a finite number >= 0"),
    (["--rule", "nope"], "argument --rule: invalid choice"),
    (["--dtype", "int8"], "argument --dtype: invalid choice"),
    (["--device", "toaster"], "--device toaster:"),
    (["-o", "{tmp}/x.txt"], "must end in .json, .json.gz, .jsonl"),
    (["-o", "{tmp}"], "is a directory"),
    (["--chat"], "has no chat template"),
    (["--prompt", ""], "--prompt is empty and --no-chat uses it as raw text"),
    (["--confidence", "1.5"], "argument --confidence: must be in [0, 1]"),
]


@pytest.mark.parametrize(("extra", "message"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_record_bad_arguments(
    capsys: pytest.CaptureFixture[str], model_dirs: tuple[Path, Path], tmp_path: Path, extra: list[str], message: str
) -> None:
    extra = [e.replace("{tmp}", str(tmp_path)) for e in extra]
    base = [a for a in tiny(model_dirs) if not ("--chat" in extra and a == "--no-chat")]
    argv = [*base, *(["--prompt", "the cat"] if "--prompt" not in extra else []), *extra]
    if "-o" not in extra:
        argv += ["-o", tmp_path / "x.json"]
    rc, out, err = cli(capsys, *argv)
    assert rc == 2 and out == ""
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err and "usage:" not in err
    assert not (tmp_path / "x.json").exists()
    if "--chat" not in extra and "--device" not in extra:  # these two need to look at the machine or the model
        assert "loading" not in err  # refused before any model loads, as docs/CLI.md promises


def test_record_missing_model_and_prompt_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for argv, message in (
        (["--target", tmp_path / "nope", "--prompt", "x"], "no such model directory"),
        (["--target", tmp_path / "nope.gguf", "--prompt", "x"], "no such GGUF file"),
        (["--prompt-file", tmp_path / "none.txt"], "cannot read --prompt-file"),
    ):
        rc, _, err = cli(capsys, "record", "--draft", "ngram", *argv, "-o", tmp_path / "o.json")
        assert rc == 2 and message in err.splitlines()[-1] and err.splitlines()[-1].startswith("error: ")
    (tmp_path / "empty.txt").write_text("\n \n")
    rc, _, err = cli(capsys, "record", "--prompt-file", tmp_path / "empty.txt", "-o", tmp_path / "d")
    assert rc == 2 and "has no prompts" in err


def test_record_unknown_hub_id_offline_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    argv = ["record", "--target", "specviz-tests/no-such-model", "--draft", "ngram", "--prompt", "x"]
    rc, _, err = cli(capsys, *argv, "-o", tmp_path / "o.json")
    assert rc == 2 and err.splitlines()[-1].startswith("error: could not load target model")
    assert len([line for line in err.splitlines() if line.startswith("error")]) == 1 and len(err.splitlines()) == 2


def test_record_subprocess_end_to_end(model_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    proc = run(*tiny(model_dirs, "--prompt", "the cat sat", "-o", out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and f"wrote {out}" in proc.stderr
    assert validate(load(out)) == []


ENGINES = Path(__file__).parents[1] / "data" / "engines"


def test_summarize_reads_event_logs_minimal_traces_and_run_summaries(capsys: pytest.CaptureFixture[str]) -> None:
    """Public report: summarize refused a valid event log; engines' statistics could not be read at all."""
    example = Path(__file__).parents[2] / "assets" / "example-eventlog.csv"
    rc, out, err = cli(capsys, "summarize", example)
    assert rc == 0 and "unknown (event log)" in out and "per position" in out, err
    rc, out, err = cli(capsys, "summarize", VALID / "minimal.json")
    assert rc == 0 and "tokens per step" in out, err
    rc, out, _ = cli(capsys, "summarize", ENGINES / "vllm_specdecode.log")
    assert rc == 0 and "A run summary: totals, not steps." in out and "61.7%" in out and "Missing:" in out
    rc, out, _ = cli(capsys, "summarize", "--json", ENGINES / "sglang_generate.json")
    s = json.loads(out)
    assert rc == 0 and (s["kind"], s["engine"], s["drafted"], s["accepted"], s["steps"]) == (
        "run summary",
        "sglang",
        90,
        63,
        30,
    )


def test_summarize_names_what_it_reads_for_a_file_of_no_known_kind(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("my notes about vllm and speculative decoding\n")
    rc, out, err = cli(capsys, "summarize", junk)
    assert rc == 1 and out == "" and len(err.splitlines()) == 1
    for kind in ("a specviz trace", "an event log", "run summary", "vLLM", "SGLang", "llama.cpp", "TensorRT-LLM"):
        assert kind in err
    rc, _, err = cli(capsys, "summarize", BROKEN / "n_accepted_mismatch.json")
    assert rc == 1 and "specviz reads" not in err  # a damaged trace gets its own message, not the list
