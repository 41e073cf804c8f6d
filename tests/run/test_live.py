"""specviz.run.live without Streamlit: the decode worker, its timings, its baseline, stopping, errors."""

from __future__ import annotations

import time

from specviz.drafters.model import ModelDrafter
from specviz.run import live
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

    from specviz.core.tree import TreeShape
    from specviz.run import treesize

    assert live.LiveSettings(tree="2,2").config().tree.size == 6
    assert live.LiveSettings(tree="auto").config().tree.kind == "chain"  # placeholder until sized
    with pytest.raises(ValueError, match="tree shape"):
        live.LiveSettings(tree="bogus").config()
    calls = []

    def fake_size(t, d):
        calls.append(1)
        return treesize.Sizing(TreeShape("dynamic", nodes=6, depth=8, topk=4), {1: 10.0, 8: 12.0})

    monkeypatch.setattr(treesize, "size_tree", fake_size)
    monkeypatch.setattr(live, "SIZINGS", {})
    s = live.LiveSettings(tree="auto", target="t", draft="d")
    drafter = ModelDrafter(draft_lm, target.vocab_size)
    for _ in range(2):
        cfg, meta = live.sized_config(s, target, drafter)
        assert cfg.tree.text == "dynamic:6:8:4" and meta["tree"]["auto"]["chosen"] == "dynamic:6:8:4"
    assert len(calls) == 1


# ---------------------------------------------------------------- the speed story


def _numbers(**kw: object) -> live.SpeedNumbers:
    """A run of 64 tokens in 8 s (8 tok/s), α 0.42, 1.64 tokens a pass, γ 4 (5 positions a pass)."""
    base = dict(tokens=64, seconds=8.0, alpha=0.42, tokens_per_pass=1.64, gamma=4, positions=5.0)
    return live.SpeedNumbers(**{**base, **kw})  # type: ignore[arg-type]


def test_the_verdict_says_slower_and_why():
    n = _numbers(baseline_tokens=64, baseline_seconds=6.96, pass_cost=2.1, draft_share=0.18, ideal=1.31)
    assert n.outcome == "slower" and round(n.speedup or 0, 2) == 0.87
    assert live.speed_verdict(n) == (
        "Speculative decoding was 0.87× the evaluation model alone — slower: α = 0.42 gave 1.64 tokens per "
        "verification pass, but a pass over γ+1 = 5 positions cost 2.1× a one-token pass here (measured) and "
        "drafting took 18% of the time. The ideal (formula: a pass over γ+1 positions costs one token's "
        "pass): 1.31×."
    )


def test_the_verdict_says_faster_and_why():
    n = _numbers(alpha=0.8, tokens_per_pass=3.36, baseline_tokens=64, baseline_seconds=10.8, pass_cost=1.3)
    words = live.speed_verdict(n)
    assert n.outcome == "faster"
    assert words.startswith("Speculative decoding was 1.35× the evaluation model alone — faster: α = 0.80 gave 3.36")
    assert "while a pass over γ+1 = 5 positions cost 1.3× a one-token pass here (measured)." in words
    assert "ideal" not in words  # no formula figure without c


def test_the_verdict_says_about_as_fast_within_the_noise():
    n = _numbers(baseline_tokens=64, baseline_seconds=8.1, pass_cost=1.8, draft_share=0.2)
    words = live.speed_verdict(n)
    assert n.outcome == "about as fast" and "1.01× the evaluation model alone — about as fast: α = 0.42" in words
    assert words.endswith("drafting took 20% of the time, which used up the gain.")


def test_without_a_baseline_the_verdict_does_not_guess():
    n = _numbers(draft_share=0.18, ideal=1.31)
    words = live.speed_verdict(n)
    assert n.outcome is None and n.speedup is None
    assert words.startswith("Speculative decoding ran at 8.0 tok/s: α = 0.42 gave 1.64 tokens per verification pass")
    assert "cannot say whether that is faster or slower" in words and "slower:" not in words
    assert "ideal (formula: a pass over γ+1 positions costs one token's pass): 1.31×" in words


def test_the_verdict_for_short_drafts_trees_and_nothing_drafted():
    short = live.speed_verdict(_numbers(positions=3.4, baseline_tokens=64, baseline_seconds=4.0, pass_cost=1.6))
    assert "a pass over 3.4 positions on average (γ+1 = 5 at most) cost 1.6×" in short
    tree = live.speed_verdict(_numbers(positions=15, tree=True, baseline_tokens=64, baseline_seconds=4.0, pass_cost=3))
    assert "a pass over the draft tree's 15.0 positions (its nodes and the last token) cost 3.0×" in tree
    none = live.speed_verdict(_numbers(alpha=None, tokens_per_pass=1.0, baseline_tokens=64, baseline_seconds=7.0))
    assert "slower: nothing was drafted, so every token needed its own verification pass." in none
    assert live.speed_verdict(_numbers(tokens=0)) == "Nothing was decoded, so there is no speed to judge."
    assert "recorded no timing" in live.speed_verdict(_numbers(seconds=None))


def test_speed_numbers_come_from_the_runs_own_timings(target, draft_lm):
    run = _run(target, draft_lm, max_new=24)
    assert run.done.wait(60) and run.error is None
    n = live.speed_numbers(run.trace)
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
    assert live.speed_verdict(n).startswith(f"Speculative decoding was {n.speedup:.2f}× the evaluation model alone")
    assert run.baseline is not None and run.baseline["end_tokens"] == sorted(
        {target.token_text(i) for i in run.baseline_ids if i in target.eos_token_ids}
    )
    no_base = _run(target, draft_lm, baseline=False, max_new=8)
    assert no_base.done.wait(60) and live.speed_numbers(no_base.trace).outcome is None


def test_the_page_compares_with_the_evaluation_model_alone_by_default():
    assert live.LiveSettings().compare


def test_output_words_state_the_numerics_contract(recorded) -> None:
    """The Live result says identical, or where a greedy run parted and whether it was a near-tie; a sampled
    run's promise is the distribution, not the text."""
    greedy = recorded["greedy"]
    ids = list(greedy["output"]["token_ids"])
    assert live.output_words(greedy, ids).startswith("Same output as the evaluation model alone")
    other = [*ids[:3], (ids[3] + 1) % 50, *ids[4:]]
    words = live.output_words(greedy, other)
    assert words.startswith("Parted from the evaluation model alone at token 3")
    assert "exact numerics" in words and "never happen" in words  # fp32: a parting is a bug, said as one
    sampled = recorded["sampling"]
    words = live.output_words(sampled, list(sampled["output"]["token_ids"]))
    assert words.startswith("The two outputs are identical: the run sampled")
