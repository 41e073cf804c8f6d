"""specviz/assets/live/*.js, the decoding loop that runs in the browser: its Node tests pass, the fixtures
they hold it to are what the Python implementations give today, and a trace it writes is a specviz
trace (strict validation and the JSON Schema), so it replays like one recorded in Python.

Node 20 is on CI and on the dev machines: a missing node fails these tests, it does not skip them."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema

from specviz.core.decoder import DEFAULT_CONFIDENCE, GammaPolicy
from specviz.trace import load, validate
from tests.js import make_fixtures

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = ROOT / "tests" / "js"


def _node() -> str:
    node = shutil.which("node")
    assert node, "node (version 20) is needed to test specviz/assets/live: install it (CI has it)"
    return node


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_node(), *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def _same(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two fixture files differ: exact, except floats within float32 round-off (another CPU's
    vectorised softmax may round differently in the last bit)."""
    if isinstance(a, float) or isinstance(b, float):
        ok = (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-7)
        )
        return [] if ok else [f"{where}: {a!r} vs {b!r}"]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(a)} vs {sorted(b)}"]
        return [d for k in a for d in _same(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} vs {len(b)} entries"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _same(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} vs {b!r}"]


def test_node_tests_pass() -> None:
    """warp, rules and decode.js in Node: against Python's fixtures, lossless sampling, greedy = target alone."""
    done = _run("--test", "tests/js/")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


def test_fixtures_are_what_python_gives(tmp_path: Path) -> None:
    """The committed fixtures cannot drift from specviz.core: rewrite them with
    `PYTHONPATH=. .venv/bin/python tests/js/make_fixtures.py` after changing warp.py or rules.py."""
    for path in make_fixtures.write(tmp_path):
        committed = json.loads((make_fixtures.FIXTURES / path.name).read_text(encoding="utf-8"))
        diffs = _same(json.loads(path.read_text(encoding="utf-8")), committed, path.name)
        assert not diffs, "\n".join(diffs[:10])


def test_a_browser_trace_validates_strictly(tmp_path: Path) -> None:
    """Fake-model decodes with every rule, warping, an accepted EOS, a short budget, a Stop, the
    prompt-lookup fallback off and the confidence stop off or higher: each trace passes `specviz validate`
    (strict) and the JSON Schema, and says it ran in the browser; with the fallback on (the default) it says
    so and marks the copied drafts; with the stop on (the default) meta.gamma_policy is Python's, and steps
    draft fewer than gamma where the budget left room for more."""
    done = _run("tests/js/write_trace.mjs", str(tmp_path))
    assert done.returncode == 0, done.stderr[-4000:]
    schema = json.loads((ROOT / "docs" / "trace.schema.json").read_text(encoding="utf-8"))
    paths = sorted(tmp_path.glob("*.json"))
    assert len(paths) == 12
    rejected = 0
    copied = 0
    stopped = 0
    for path in paths:
        trace = load(path)
        assert validate(trace) == [], path.name
        jsonschema.validate(trace, schema)
        assert trace["meta"]["engine"] == "browser"
        # the evaluation model alone ran after every run but the stopped one (as on the Live page)
        assert (trace["meta"]["timing"]["baseline"] is None) == (path.stem == "stopped")
        rejected += sum(s["n_accepted"] < len(s["draft"]) for s in trace["steps"])
        copies = [d for s in trace["steps"] for d in s["draft"] if "copied" in d]
        if path.stem == "no-lookup":
            assert "lookup" not in trace["meta"]["draft"] and not copies
        else:
            assert trace["meta"]["draft"]["lookup"] == {"below": 0.7, "min_ngram": 2, "max_ngram": 3}
            assert all(d["q"] == 1.0 and d["copied"] in (2, 3) for d in copies)
        copied += len(copies)
        meta, made, short = trace["meta"], 0, 0
        for s in trace["steps"]:  # a chain shorter than gamma and the budget: the stop ended it
            short += 0 < len(s["draft"]) < min(meta["gamma"], meta["max_new_tokens"] - made - 1)
            made += s["n_accepted"] + 1
        if path.stem == "no-stop":
            assert "gamma_policy" not in meta and short == 0
        else:
            c = 0.6 if path.stem == "confidence" else DEFAULT_CONFIDENCE
            policy = GammaPolicy.from_options(meta["gamma"], confidence=c)
            assert policy is not None and meta["gamma_policy"] == policy.meta(meta["gamma"])
            assert short > 0 or path.stem == "stopped", path.name
        stopped += short
    assert rejected > 10
    assert copied > 10
    assert stopped > 20
    eos = load(tmp_path / "eos.json")
    assert eos["output"]["stop_reason"] == "eos" and eos["steps"][-1]["next"] is None
    assert load(tmp_path / "stopped.json")["output"]["stop_reason"] == "stopped"
