"""treesize: the overhead fit, the sizing's report of the α a chain needs (theory.alpha_needed), and the
race that checks a predicted tree against the run's chain. `choose` and the whole `auto` run are tested
in test_tree.py."""

from __future__ import annotations

import dataclasses

import pytest

from specviz.core.tree import TreeShape
from specviz.run.treesize import Sizing, _fit_overhead

FLAT = {1: 100.0, 64: 100.0}


def test_sizing_meta_reports_the_needed_alpha_per_goal():
    meta = Sizing(TreeShape("chain"), FLAT).meta()
    assert set(meta["alpha_needed"]) == {"1", "1.5", "2"}
    assert meta["alpha_needed"]["2"]["gamma"] == 8


def test_the_overhead_fit_splits_fixed_and_per_node_costs():
    assert _fit_overhead([(8, 14.0), (32, 38.0), (64, 70.0)]) == pytest.approx((6.0, 1.0))
    assert _fit_overhead([(8, 10.0), (8, 12.0)]) == (11.0, 0.0)  # one size: a fixed cost
    assert _fit_overhead([(8, 30.0), (64, 10.0)]) == (20.0, 0.0)  # falling: noise, no per-node part
    assert _fit_overhead([]) == (0.0, 0.0)


def test_a_negative_intercept_fits_through_the_origin():
    assert _fit_overhead([(10, 5.0), (20, 30.0)]) == pytest.approx((0.0, (50 + 600) / 500))


def test_one_child_per_node_runs_as_a_chain_of_that_many_drafts():
    from specviz.core.decoder import DecodeConfig, GammaPolicy
    from specviz.run.treesize import as_run

    cfg = DecodeConfig(gamma=4, gamma_policy=GammaPolicy())
    one = TreeShape("dynamic", nodes=1, depth=8, topk=1)
    chain = as_run(cfg, one)
    assert (chain.tree.kind, chain.gamma, chain.gamma_policy) == ("chain", 1, None)  # sized: no adaptive schedule
    stop = as_run(DecodeConfig(gamma=4, gamma_policy=GammaPolicy("constant", start=4, confidence=0.3)), one)
    assert stop.gamma_policy is not None and (stop.gamma_policy.confidence, stop.gamma_policy.start) == (0.3, 1)
    tree = TreeShape("dynamic", nodes=16, depth=8, topk=2)
    assert as_run(cfg, tree).tree == tree and as_run(cfg, tree).gamma == 4


def test_a_chain_of_one_draft_can_win():
    from specviz.run.treesize import choose

    chain_steps = [{"tree": {"path": [0, 1, 2], "nodes": [{"depth": d} for d in range(1, 9)]}}] * 3
    # a second position nearly free, a third dear: one draft (2 tokens a step) beats two (3 tokens a step)
    costs = {1: 100.0, 2: 105.0, 3: 300.0, 64: 5000.0}
    shape, rows = choose(costs, {1: chain_steps}, draft_ms_per_level=1.0)
    assert (shape.topk, shape.nodes) == (1, 1)
    assert next(r for r in rows if r["nodes"] == 1)["tokens_per_step"] == 2


def test_a_whole_sizing_times_the_model_alone_too(target, draft_lm):
    from specviz.drafters.model import ModelDrafter
    from specviz.run.treesize import size_tree

    sizing = size_tree(target, ModelDrafter(draft_lm, target.vocab_size), tokens=8)
    meta = sizing.meta()
    assert sizing.alone_ms > 0 and meta["alone_ms"] == round(sizing.alone_ms, 2)
    assert meta["chosen"] == sizing.shape.text and set(meta["alpha_needed"]) == {"1", "1.5", "2"}


def _fake_race(speeds: dict[str, float]):
    def race(target, drafter, configs, prompts):
        assert set(configs) == {"predicted", "chain"} and len(prompts) == 2
        chain, tree = configs["chain"], configs["predicted"]
        assert (chain.tree.kind, chain.gamma, chain.gamma_policy.confidence) == ("chain", 4, 0.4)  # the run's own
        assert tree.tree.topk == 4 and chain.max_new_tokens == tree.max_new_tokens == 32
        assert chain.rule.name == tree.rule.name == "greedy" and chain.sampling.greedy
        return speeds

    return race


def test_a_predicted_tree_that_decodes_slower_than_the_runs_chain_gives_way(monkeypatch):
    from specviz.core.decoder import DecodeConfig, GammaPolicy
    from specviz.run import treesize

    cfg = DecodeConfig(gamma=4, gamma_policy=GammaPolicy("constant", start=4, confidence=0.4))
    tree = TreeShape("dynamic", nodes=4, depth=8, topk=4)
    target = type("T", (), {"encode": lambda self, text: [1, 2, 3]})()
    monkeypatch.setattr(treesize, "race", _fake_race({"predicted": 31.5, "chain": 38.2}))
    sized = treesize.checked(Sizing(tree, FLAT), cfg, target, drafter=None)
    meta = sized.meta()
    assert sized.shape.kind == "chain" and (meta["chosen"], meta["predicted"]) == ("chain", "dynamic:4:8:4")
    assert meta["race"]["kept"] == "chain" and meta["race"]["chain"]["shape"] == "chain, gamma 4, stop below q 0.4"
    run = treesize.as_run(cfg, sized.shape)  # the run's own chain: its gamma and its stop
    assert (run.tree.kind, run.gamma, run.gamma_policy.confidence) == ("chain", 4, 0.4)
    # a tie within the margin keeps the chain; a clear win keeps the tree
    monkeypatch.setattr(treesize, "race", _fake_race({"predicted": 38.5, "chain": 38.2}))
    assert treesize.checked(Sizing(tree, FLAT), cfg, target, drafter=None).shape.kind == "chain"
    monkeypatch.setattr(treesize, "race", _fake_race({"predicted": 40.0, "chain": 38.2}))
    kept = treesize.checked(Sizing(tree, FLAT), cfg, target, drafter=None)
    assert kept.shape == tree and kept.meta()["race"]["kept"] == "predicted" and kept.meta()["predicted"] == tree.text


def test_a_predicted_chain_races_only_when_it_is_not_the_runs(monkeypatch):
    from specviz.core.decoder import DecodeConfig, GammaPolicy
    from specviz.run import treesize

    monkeypatch.setattr(treesize, "race", lambda *a: pytest.fail("raced"))
    same = Sizing(TreeShape("dynamic", nodes=4, depth=8, topk=1), FLAT)
    cfg = DecodeConfig(gamma=4, gamma_policy=GammaPolicy("constant", start=4, confidence=0.4))
    assert treesize.checked(same, cfg, None, None) is same and "race" not in same.meta()
    raced = []
    monkeypatch.setattr(treesize, "race", lambda t, d, c, p: raced.append(c) or {"predicted": 30.0, "chain": 40.0})
    target = type("T", (), {"encode": lambda self, text: [1, 2, 3]})()
    two = treesize.checked(Sizing(TreeShape("dynamic", nodes=2, depth=8, topk=1), FLAT), cfg, target, None)
    assert raced[0]["predicted"].gamma == 2 and two.shape.kind == "chain" and two.predicted.nodes == 2


def test_a_race_times_each_configuration_on_real_models(target, draft_lm):
    from specviz.core.decoder import DecodeConfig
    from specviz.core.rules import make_rule
    from specviz.core.warp import Sampling
    from specviz.drafters.model import ModelDrafter
    from specviz.run.treesize import race

    greedy = DecodeConfig(rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=4)
    configs = {
        "chain": greedy,
        "predicted": dataclasses.replace(greedy, tree=TreeShape("dynamic", nodes=4, depth=8, topk=2)),
    }
    speeds = race(target, ModelDrafter(draft_lm, target.vocab_size), configs, [target.encode("Hello there")])
    assert set(speeds) == {"chain", "predicted"} and all(v > 0 for v in speeds.values())


def test_a_race_warms_each_side_up_then_takes_turns(monkeypatch):
    from specviz.core.decoder import DecodeConfig
    from specviz.run import treesize

    seen = []

    def decode(target, drafter, ids, cfg):
        seen.append((cfg.tree.kind, cfg.max_new_tokens, ids[0]))
        yield {"n_accepted": 1}

    monkeypatch.setattr(treesize, "speculative_decode", decode)
    target = type("T", (), {"sync": lambda self: None})()
    tree = DecodeConfig(tree=TreeShape("dynamic", nodes=4, depth=8, topk=2), max_new_tokens=32)
    speeds = treesize.race(target, None, {"predicted": tree, "chain": DecodeConfig(max_new_tokens=32)}, [[1], [2]])
    assert seen[:2] == [("dynamic", 8, 1), ("chain", 8, 1)]  # untimed warm-ups, a few tokens of the first prompt
    kinds = [k for k, _, _ in seen[2:]]
    assert kinds == ["dynamic", "dynamic", "chain", "chain", "chain", "chain", "dynamic", "dynamic"]  # turns, reversed
    assert all(v > 0 for v in speeds.values())


def test_auto_on_real_models_records_what_it_predicted_and_what_runs(target, draft_lm):
    from specviz.core.decoder import build_config
    from specviz.drafters.model import ModelDrafter
    from specviz.run.treesize import resolve_tree

    cfg = build_config(gamma=3, rule="greedy", temperature=0.0, confidence=0.4, max_new_tokens=8)
    said = []
    run, meta = resolve_tree(cfg, TreeShape("auto"), target, ModelDrafter(draft_lm, target.vocab_size), said.append)
    auto = meta["tree"]["auto"]
    assert run.tree.text == auto["chosen"] or (run.tree.kind == "chain" and auto["chosen"].endswith(":1"))
    if "race" in auto:  # the prediction was not the run's own chain: it raced it
        assert auto["race"]["kept"] in ("predicted", "chain") and auto["race"]["chain"]["gamma"] == 3
        assert (auto["chosen"] == "chain") == (auto["race"]["kept"] == "chain")
        assert "timed" not in said[-1] and "measured on the calibration text" in said[-1]
    if auto["chosen"] == "chain":
        assert (run.gamma, run.gamma_policy.confidence) == (3, 0.4)
