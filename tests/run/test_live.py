"""specviz.run.live without Streamlit: the decode worker, its timings, its baseline, stopping, errors."""

from __future__ import annotations

import time

from specviz.core.tree import TreeShape
from specviz.drafters.model import ModelDrafter
from specviz.run import live, treesize, verdict
from specviz.run.record import Recording
from specviz.trace import validate

PROMPT = [1, 3, 4, 5, 6, 3, 7]


def _run(target, draft_lm, baseline: bool = True, max_new: int = 20, alive=lambda: True) -> live.LiveRun:
    s = live.LiveSettings(temperature=0.0, rule="greedy", max_new_tokens=max_new)
    cfg = s.config()
    control = live.RunControl(alive, time.monotonic() + 60)
    rec = Recording(
        target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT, should_stop=control.should_stop
    )
    return live.LiveRun(rec, cfg, control, baseline=baseline).start()


def test_the_worker_times_the_run_and_its_baseline_the_same_way(target, draft_lm):
    run = _run(target, draft_lm)
    assert run.done.wait(60) and run.error is None
    trace = run.trace
    timing = trace["meta"]["timing"]
    assert validate(trace) == [] and run.progress().phase == "done"
    steps_ms = sum(s["timing_ms"]["draft"] + s["timing_ms"]["verify"] for s in trace["steps"])
    assert abs(timing["model_ms"] - steps_ms) < 1e-6 and timing["wall_ms"] >= 0.99 * timing["model_ms"]
    assert timing["tokens"] == len(trace["output"]["token_ids"])
    base = timing["baseline"]
    assert base["tokens"] == len(run.baseline_ids) == run.baseline["tokens"] and base["wall_ms"] > 0
    assert run.baseline_ids == trace["output"]["token_ids"]  # greedy and lossless: the same tokens


def test_a_closed_tab_stops_the_worker_and_keeps_a_valid_partial_trace(target, draft_lm):
    checks = {"n": 0}

    def alive() -> bool:
        checks["n"] += 1
        return checks["n"] <= 2

    run = _run(target, draft_lm, max_new=200, alive=alive)
    assert run.done.wait(60)
    assert run.control.reason == "the browser tab was closed" and run.baseline is None  # no baseline after a stop
    trace = run.trace
    assert trace["output"]["stop_reason"] == "stopped" and validate(trace) == [] and len(trace["steps"]) < 200


def test_an_error_mid_run_is_kept_with_the_steps_before_it(target, draft_lm, monkeypatch):
    real = ModelDrafter.propose
    calls = {"n": 0}

    def propose(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("boom")
        return real(self, *a, **kw)

    monkeypatch.setattr(ModelDrafter, "propose", propose)
    run = _run(target, draft_lm, max_new=60)
    assert run.done.wait(60) and isinstance(run.error, RuntimeError)
    assert len(run.trace["steps"]) == 2 and validate(run.trace) == []
    assert "RuntimeError: boom" in live.explain(run.error, live.LiveSettings())


def test_the_draft_shape_setting(target, draft_lm, monkeypatch):
    """The Live page's draft shape: a fixed tree goes straight into the config; 'auto' is sized once per
    pair and process and recorded in meta.tree.auto; a bad shape says what is accepted."""
    import pytest

    assert live.LiveSettings(tree="2,2").config().tree.size == 6
    assert live.LiveSettings(tree="auto").config().tree.kind == "chain"  # placeholder until sized
    with pytest.raises(ValueError, match="tree shape"):
        live.LiveSettings(tree="bogus").config()
    calls = []

    def fake_size(t, d):
        calls.append(1)
        return treesize.Sizing(TreeShape("dynamic", nodes=6, depth=8, topk=4), {1: 10.0, 8: 12.0})

    monkeypatch.setattr(treesize, "size_tree", fake_size)
    monkeypatch.setattr(treesize, "race", lambda *a: {"predicted": 40.0, "chain": 30.0})  # the tree's check passes
    monkeypatch.setattr(live, "SIZINGS", {})
    monkeypatch.setattr(live, "PREDICTIONS", {})
    s = live.LiveSettings(tree="auto", target="t", draft="d")
    drafter = ModelDrafter(draft_lm, target.vocab_size)
    for _ in range(2):
        cfg, meta = live.sized_config(s, target, drafter)
        assert cfg.tree.text == "dynamic:6:8:4" and meta["tree"]["auto"]["chosen"] == "dynamic:6:8:4"
    assert len(calls) == 1


def test_a_sized_chain_brings_its_gamma(target, draft_lm, monkeypatch):
    sizes, races = [], []
    monkeypatch.setattr(
        treesize,
        "size_tree",
        lambda t, d: sizes.append(1) or treesize.Sizing(TreeShape("dynamic", nodes=2, depth=8, topk=1), {1: 10.0}),
    )
    monkeypatch.setattr(
        treesize, "race", lambda t, d, configs, p: races.append(configs) or {"predicted": 40.0, "chain": 30.0}
    )
    monkeypatch.setattr(live, "SIZINGS", {})
    monkeypatch.setattr(live, "PREDICTIONS", {})
    s = live.LiveSettings(tree="auto", target="t", draft="d", gamma=4, confidence=0.0)
    cfg, meta = live.sized_config(s, target, ModelDrafter(draft_lm, target.vocab_size))
    assert (cfg.tree.kind, cfg.gamma, cfg.gamma_policy) == ("chain", 2, None)
    assert meta["tree"]["kind"] == "chain" and meta["tree"]["auto"]["chosen"] == "dynamic:2:8:1"
    assert (races[0]["predicted"].gamma, races[0]["chain"].gamma) == (2, 4)  # the chain of 2 raced the run's 4
    # a later session's own settings are kept; the pair is measured once, the race runs for the new chain
    later = live.LiveSettings(tree="auto", target="t", draft="d", gamma=6, confidence=0.4, temperature=0.0)
    cfg2, meta2 = live.sized_config(later, target, ModelDrafter(draft_lm, target.vocab_size))
    assert (cfg2.gamma, cfg2.gamma_policy.confidence, cfg2.sampling.temperature) == (2, 0.4, 0.0)
    assert len(sizes) == 1 and len(races) == 2 and races[1]["chain"].gamma == 6
    assert meta2["tree"]["auto"]["race"]["chain"]["shape"] == "chain, gamma 6, stop below q 0.4"
    assert live.latest_sizing("t", "d")[1] is meta2 and live.latest_sizing("x", "y")[1] is meta2


def test_a_race_the_chain_wins_runs_the_sessions_chain(target, draft_lm, monkeypatch):
    monkeypatch.setattr(
        treesize, "size_tree", lambda t, d: treesize.Sizing(TreeShape("dynamic", nodes=6, depth=8, topk=4), {1: 10.0})
    )
    monkeypatch.setattr(treesize, "race", lambda *a: {"predicted": 30.0, "chain": 30.5})  # within the margin: a tie
    monkeypatch.setattr(live, "SIZINGS", {})
    monkeypatch.setattr(live, "PREDICTIONS", {})
    s = live.LiveSettings(tree="auto", target="t", draft="d", gamma=3, confidence=0.4)
    cfg, meta = live.sized_config(s, target, ModelDrafter(draft_lm, target.vocab_size))
    assert (cfg.tree.kind, cfg.gamma, cfg.gamma_policy.confidence) == ("chain", 3, 0.4)
    auto = meta["tree"]["auto"]
    assert (auto["chosen"], auto["predicted"], auto["race"]["kept"]) == ("chain", "dynamic:6:8:4", "chain")


def test_speed_numbers_come_from_the_runs_own_timings(target, draft_lm):
    run = _run(target, draft_lm, max_new=24)
    assert run.done.wait(60) and run.error is None
    n = verdict.speed_numbers(run.trace)
    timing = run.trace["meta"]["timing"]
    steps = run.trace["steps"]
    assert n.tokens == timing["tokens"] and n.seconds == timing["wall_ms"] / 1e3
    assert n.baseline_tokens == timing["baseline"]["tokens"] and n.outcome is not None
    verify_ms = sum(s["timing_ms"]["verify"] for s in steps[1:]) / (len(steps) - 1)  # step 0 also read the prompt
    assert (
        n.pass_cost is not None
        and abs(n.pass_cost - verify_ms / (timing["baseline"]["wall_ms"] / n.baseline_tokens)) < 1e-9
    )
    assert n.positions == 1 + sum(len(s["draft"]) for s in steps) / len(steps) and not n.tree
    assert 0 < (n.draft_share or 0) < 1
    assert verdict.speed_verdict(n).startswith(f"Speculative decoding was {n.speedup:.2f}× the evaluation model alone")
    assert run.baseline is not None and run.baseline["end_tokens"] == sorted(
        {target.token_text(i) for i in run.baseline_ids if i in target.eos_token_ids}
    )
    no_base = _run(target, draft_lm, baseline=False, max_new=8)
    assert no_base.done.wait(60) and verdict.speed_numbers(no_base.trace).outcome is None


def test_the_page_compares_with_the_evaluation_model_alone_by_default():
    assert live.LiveSettings().compare
