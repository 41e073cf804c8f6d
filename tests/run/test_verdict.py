"""specviz.run.verdict: what the Live page says about a run's speed and its output, from the trace alone."""

from __future__ import annotations

import pytest

from specviz.run import verdict


def _numbers(**kw: object) -> verdict.SpeedNumbers:
    """A run of 64 tokens in 8 s (8 tok/s), α 0.42, 1.64 tokens a pass, γ 4 (5 positions a pass)."""
    base = dict(tokens=64, seconds=8.0, alpha=0.42, tokens_per_pass=1.64, gamma=4, positions=5.0)
    return verdict.SpeedNumbers(**{**base, **kw})  # type: ignore[arg-type]


def test_the_verdict_says_slower_and_why():
    n = _numbers(baseline_tokens=64, baseline_seconds=6.96, pass_cost=2.1, draft_share=0.18, ideal=1.31)
    assert n.outcome == "slower" and round(n.speedup or 0, 2) == 0.87
    assert verdict.speed_verdict(n) == (
        "Speculative decoding was 0.87× the evaluation model alone — slower: α = 0.42 gave 1.64 tokens per "
        "verification pass, but a pass over γ+1 = 5 positions cost 2.1× a one-token pass here (measured) and "
        "drafting took 18% of the time. The ideal (formula: a pass over γ+1 positions costs one token's "
        "pass): 1.31×."
    )


def test_the_verdict_says_faster_and_why():
    n = _numbers(alpha=0.8, tokens_per_pass=3.36, baseline_tokens=64, baseline_seconds=10.8, pass_cost=1.3)
    words = verdict.speed_verdict(n)
    assert n.outcome == "faster"
    assert words.startswith("Speculative decoding was 1.35× the evaluation model alone — faster: α = 0.80 gave 3.36")
    assert "while a pass over γ+1 = 5 positions cost 1.3× a one-token pass here (measured)." in words
    assert "ideal" not in words  # no formula figure without c


def test_the_verdict_says_about_as_fast_within_the_noise():
    n = _numbers(baseline_tokens=64, baseline_seconds=8.1, pass_cost=1.8, draft_share=0.2)
    words = verdict.speed_verdict(n)
    assert n.outcome == "about as fast" and "1.01× the evaluation model alone — about as fast: α = 0.42" in words
    assert words.endswith("drafting took 20% of the time, which used up the gain.")


def test_without_a_baseline_the_verdict_does_not_guess():
    n = _numbers(draft_share=0.18, ideal=1.31)
    words = verdict.speed_verdict(n)
    assert n.outcome is None and n.speedup is None
    assert words.startswith("Speculative decoding ran at 8.0 tok/s: α = 0.42 gave 1.64 tokens per verification pass")
    assert "cannot say whether that is faster or slower" in words and "slower:" not in words
    assert "ideal (formula: a pass over γ+1 positions costs one token's pass): 1.31×" in words


def test_the_verdict_for_short_drafts_trees_and_nothing_drafted():
    short = verdict.speed_verdict(_numbers(positions=3.4, baseline_tokens=64, baseline_seconds=4.0, pass_cost=1.6))
    assert "a pass over 3.4 positions on average (γ+1 = 5 at most) cost 1.6×" in short
    tree = verdict.speed_verdict(
        _numbers(positions=15, tree=True, baseline_tokens=64, baseline_seconds=4.0, pass_cost=3)
    )
    assert "a pass over the draft tree's 15.0 positions (its nodes and the last token) cost 3.0×" in tree
    none = verdict.speed_verdict(_numbers(alpha=None, tokens_per_pass=1.0, baseline_tokens=64, baseline_seconds=7.0))
    assert "slower: nothing was drafted, so every token needed its own verification pass." in none
    assert verdict.speed_verdict(_numbers(tokens=0)) == "Nothing was decoded, so there is no speed to judge."
    assert "recorded no timing" in verdict.speed_verdict(_numbers(seconds=None))


def test_output_words_state_the_numerics_contract(recorded) -> None:
    """The Live result says identical, or where a greedy run parted and whether it was a near-tie; a sampled
    run's promise is the distribution, not the text."""
    greedy = recorded["greedy"]
    ids = list(greedy["output"]["token_ids"])
    assert verdict.output_words(greedy, ids).startswith("Same output as the evaluation model alone")
    other = [*ids[:3], (ids[3] + 1) % 50, *ids[4:]]
    words = verdict.output_words(greedy, other)
    assert words.startswith("Parted from the evaluation model alone at token 3")
    assert "exact numerics" in words and "never happen" in words  # fp32: a parting is a bug, said as one
    sampled = recorded["sampling"]
    words = verdict.output_words(sampled, list(sampled["output"]["token_ids"]))
    assert words.startswith("The two outputs are identical: the run sampled")


def test_a_sized_run_says_what_auto_chose():
    chain = {"meta": {"gamma": 1, "tree": {"kind": "chain", "nodes": 1, "auto": {"chosen": "dynamic:1:8:1"}}}}
    assert "a chain of 1 draft a step" in (verdict.sized_words(chain) or "")
    tree = {"meta": {"gamma": 8, "tree": {"kind": "dynamic", "nodes": 16, "auto": {"chosen": "dynamic:16:8:4"}}}}
    assert "a dynamic tree of 16 nodes" in (verdict.sized_words(tree) or "")
    assert verdict.sized_words({"meta": {"tree": {"kind": "chain"}}}) is None  # not sized
    assert verdict.sized_words({"meta": {}}) is None


def test_a_sized_run_says_when_the_race_kept_the_chain():
    race = {
        "predicted": {"shape": "dynamic:4:8:4", "tokens_per_s": 31.5},
        "chain": {"shape": "chain, gamma 4, stop below q 0.4", "gamma": 4, "tokens_per_s": 38.25},
        "kept": "chain",
    }
    trace = {"meta": {"gamma": 4, "tree": {"kind": "chain", "auto": {"chosen": "chain", "race": race}}}}
    words = verdict.sized_words(trace) or ""
    assert "a chain of 4 drafts a step, the run's own chain (timed end to end" in words
    assert "dynamic:4:8:4 decoded 31.5 tok/s" in words and "stop below q 0.4 38.2" in words
    assert words.endswith(
        "so the chain runs) (the Speedup lab's section 'Draft trees sized to this machine' draws them)."
    )
    won = {**race, "kept": "predicted"}
    tree = {"meta": {"gamma": 8, "tree": {"kind": "dynamic", "nodes": 4, "auto": {"race": won}}}}
    assert "calibration decodes (timed end to end" in (verdict.sized_words(tree) or "")
    assert "so the prediction runs" in (verdict.sized_words(tree) or "")


@pytest.mark.parametrize(
    "race",
    [
        {"predicted": "x", "chain": 3, "kept": "chain"},
        {"predicted": {"tokens_per_s": True}, "chain": {"tokens_per_s": 1.0}, "kept": "chain"},
        {"predicted": {"tokens_per_s": float("nan")}, "chain": {"tokens_per_s": 1.0}, "kept": "predicted"},
        {"predicted": {"tokens_per_s": 1.0}, "chain": {"tokens_per_s": 2.0}, "kept": ["chain"]},
        "chain",
    ],
)
def test_a_hostile_race_reads_as_no_race(race):
    trace = {"meta": {"gamma": 4, "tree": {"kind": "chain", "auto": {"race": race}}}}
    words = verdict.sized_words(trace) or ""
    assert "the shape with the most tokens per second" in words and "None" not in words and "timed" not in words
    assert verdict.race_words({"race": race}) is None


def test_a_raced_shape_name_is_cut_short():
    race = {"predicted": {"shape": "x" * 10_000, "tokens_per_s": 1.0}, "chain": {"tokens_per_s": 2.0}, "kept": "chain"}
    assert len(verdict.race_words({"race": race}) or "") < 200
