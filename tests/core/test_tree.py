"""Draft trees: shapes, the tree attention mask, the cache gather, the rules on trees, and decoding."""

from __future__ import annotations

import pytest
import torch

from specviz.core.decoder import DecodeConfig, speculative_decode
from specviz.core.rules import Rule, make_rule
from specviz.core.tree import (
    TreeShape,
    ancestors,
    children_of,
    depths,
    feed_mask,
    remove_drawn,
    tree_mask,
    tree_positions,
    verify_tree,
)
from specviz.core.warp import Sampling, sample
from specviz.drafters.model import ModelDrafter
from specviz.models.lm import CausalLM
from specviz.run.record import Recording
from specviz.trace import dumps, loads, validate
from tests.core.test_decoder import PROMPT, assert_chi_square_fits, drafter_for, hf_greedy

# root ─┬─ 0 ─┬─ 2 ── 5
#       │     └─ 3
#       └─ 1 ── 4
PARENTS = [-1, -1, 0, 0, 1, 2]


def test_tree_bookkeeping():
    assert depths(PARENTS) == [1, 1, 2, 2, 2, 3]
    assert ancestors(PARENTS, 5) == [0, 2, 5]
    assert children_of(PARENTS, -1) == [0, 1] and children_of(PARENTS, 0) == [2, 3]
    assert tree_positions(PARENTS, 9, n_context=2) == [8, 9, 10, 10, 11, 11, 11, 12]
    with pytest.raises(ValueError, match="earlier node"):
        depths([-1, 2, 0])


def test_tree_mask_lets_a_node_see_only_context_and_ancestors():
    m = tree_mask(PARENTS, past=3, n_context=2)  # [2 + 6, 3 + 8]
    assert m.shape == (8, 11)
    assert m[:, :3].all()  # the cache is visible to everyone
    assert m[0, 3] and not m[0, 4] and m[1, 3:5].all()  # the new context is causal
    node5 = m[2 + 5, 5:].nonzero().view(-1).tolist()
    assert node5 == [0, 2, 5]  # its ancestors 0 and 2, and itself
    assert not m[2 + 1, 5 + 0]  # a sibling never sees another
    f = feed_mask(past=7, context=5, visible=[[5], []])
    assert f[0].nonzero().view(-1).tolist() == [0, 1, 2, 3, 4, 5, 7]
    assert f[1].nonzero().view(-1).tolist() == [0, 1, 2, 3, 4, 8]


def test_a_tree_pass_equals_separate_chain_passes(target: CausalLM):
    """Every node's logits from one masked pass equal a plain pass over context + its path."""
    ctx, tokens = [1, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]
    cache = target.new_cache()
    target.forward(cache, ctx[:-2], last=1)
    past = target.cache_length(cache)
    logits, _ = target.forward_tree(
        cache, ctx[past:] + tokens, tree_positions(PARENTS, len(ctx) - 1, 2), tree_mask(PARENTS, past, 2)
    )
    root = target.forward(target.new_cache(), ctx, last=1)[-1]
    torch.testing.assert_close(logits[1], root, atol=1e-4, rtol=1e-4)
    for j in range(len(tokens)):
        path = [tokens[a] for a in ancestors(PARENTS, j)]
        alone = target.forward(target.new_cache(), ctx + path, last=1)[-1]
        torch.testing.assert_close(logits[2 + j], alone, atol=1e-4, rtol=1e-4)


def test_the_cache_keeps_exactly_the_accepted_path(target: CausalLM):
    ctx, tokens = [1, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]
    cache = target.new_cache()
    target.forward_tree(cache, ctx + tokens, tree_positions(PARENTS, len(ctx) - 1, 5), tree_mask(PARENTS, 0, 5))
    target.keep(cache, [*range(len(ctx)), len(ctx) + 1, len(ctx) + 4])  # path: node 1, then node 4
    assert target.cache_length(cache) == len(ctx) + 2
    after = target.forward(cache, [13], last=1)[-1]
    alone = target.forward(target.new_cache(), [*ctx, 8, 11, 13], last=1)[-1]
    torch.testing.assert_close(after, alone, atol=1e-4, rtol=1e-4)


def _onehot(v: int, i: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(i), v).float()


def test_greedy_walks_down_the_argmax_children():
    # V = 4; p rows: root → 2, after node 0 → 3, after node 1 → 0, ...
    p = torch.stack([_onehot(4, i) for i in (2, 3, 0, 1, 1, 1, 1)])
    q = torch.full((6, 4), 0.25)
    tokens = [1, 2, 3, 0, 1, 2]  # node 1 (token 2) matches the root's argmax; its child 4 (token 1) does not
    v = verify_tree(Rule("greedy"), p, q, tokens, PARENTS, torch.zeros(6))
    assert v.path == [1]
    assert v.accepted[:2] == [False, True] and v.accepted[4] is False
    assert v.accepted[2] is None and v.accepted[3] is None and v.accepted[5] is None
    assert v.rejected_at == 1 and int(v.next_probs.argmax()) == 0 and v.source == "argmax"


def test_sampling_tries_siblings_against_the_updated_residual():
    """SpecInfer's multi-round rule: after a rejection, p becomes norm(max(0, p - q)) and q loses the
    rejected token; a later sibling is tested against those."""
    p_root = torch.tensor([0.1, 0.6, 0.3, 0.0])
    q_root = torch.tensor([0.7, 0.1, 0.2, 0.0])
    parents, tokens = [-1, -1], [0, 2]
    p = torch.stack([p_root, torch.full((4,), 0.25), torch.full((4,), 0.25)])
    q = torch.stack([q_root, q_root])
    v = verify_tree(Rule("sampling"), p, q, tokens, parents, torch.tensor([0.5, 0.1]))
    # first child: accept_prob 0.1 / 0.7, r 0.5: rejected; p' = norm([0, .5, .1, 0]), q' = [0, 1/3, 2/3, 0]
    assert v.accepted == [False, True] and v.path == [1]
    assert v.accept_prob[0] == pytest.approx(0.1 / 0.7)
    assert v.p_test[1] == pytest.approx(0.1 / 0.6) and v.q_test[1] == pytest.approx(2 / 3)
    assert v.accept_prob[1] == pytest.approx((0.1 / 0.6) / (2 / 3))
    v = verify_tree(Rule("sampling"), p, q, tokens, parents, torch.tensor([0.5, 0.9]))
    assert v.path == [] and v.rejected_at == -1 and v.source == "residual"
    # both rejected: the correction comes from norm(max(0, p'' - q'')), all on token 1
    assert int(v.next_probs.argmax()) == 1 and float(v.next_probs[1]) == pytest.approx(1.0)


def test_lossy_rules_take_the_first_passing_child():
    p = torch.stack([torch.tensor([0.5, 0.3, 0.2, 0.0])] + [torch.full((4,), 0.25)] * 2)
    q = torch.tensor([[0.9, 0.05, 0.05, 0.0]] * 2)
    v = verify_tree(make_rule("threshold", tau=1.0), p, q, [0, 1], [-1, -1], torch.zeros(2))
    assert v.accepted == [False, True] and v.ratio[1] == pytest.approx(6.0)
    # typical: cutoff min(0.4, exp(-H(p))) = exp(-1.0297) = 0.357; p(2) = 0.2 fails, p(0) = 0.5 passes
    v = verify_tree(make_rule("typical", epsilon=0.4, delta=1.0), p, q, [2, 0], [-1, -1], torch.zeros(2))
    assert v.accepted == [False, True] and v.cutoff[0] == pytest.approx(0.357, abs=1e-3)


@pytest.mark.parametrize("name", ["sampling", "greedy", "threshold", "typical"])
def test_a_one_branch_tree_takes_the_chains_decisions(name: str) -> None:
    """Issue 24: the chain (Rule.verify) and the tree (verify_tree) run the rule's one test: on the same
    p, q and r, a one-branch tree accepts the chain's drafts, stops where it stops, and corrects from
    the same distribution; the numbers it compared agree (the tree reads them in float64)."""
    rule = make_rule(name, **({"tau": 0.8} if name == "threshold" else {}))
    gamma, v = 5, 7
    seen = set()
    for seed in range(40):
        g = torch.Generator().manual_seed(seed)
        logits = torch.randn(gamma + 1, v, generator=g)
        q = torch.softmax(logits[:gamma], -1)
        p = torch.softmax(logits + 0.5 * torch.randn(gamma + 1, v, generator=g), -1)  # [gamma + 1, V]
        draft = torch.multinomial(q, 1, generator=g).view(-1)
        r = torch.rand(gamma, generator=g)
        chain = rule.verify(p, q, draft, r)
        n = chain.n_accepted
        probs, source = rule.next_distribution(p[n], q[n] if n < gamma else None)
        tree = verify_tree(rule, p, q, draft.tolist(), list(range(-1, gamma - 1)), r)
        assert tree.path == list(range(n)) and tree.rejected_at == (n - 1 if n < gamma else None)
        assert tree.accepted == chain.accepted.tolist()[: n + 1] + [None] * (gamma - n - 1)
        assert tree.source == source and torch.equal(tree.next_probs, probs)
        for field in ("accept_prob", "ratio", "cutoff"):
            numbers = getattr(chain, field)
            mine = getattr(tree, field)[: n + 1]
            assert mine == ([None] * len(mine) if numbers is None else pytest.approx(numbers.tolist()[: n + 1]))
        seen.add(n)
    assert len(seen) > 1  # the cases reach different depths


def _emit_first(p: torch.Tensor, q: torch.Tensor, k: int, g: torch.Generator) -> int:
    """One step of a one-level tree with k children drawn from q without replacement: the first token."""
    kids: list[int] = []
    for _ in range(k):
        q_i = remove_drawn(q, kids)
        if float(q_i.sum()) <= 0:
            break
        kids.append(sample(q_i, float(torch.rand(1, generator=g))))
    n = len(kids)
    rows = torch.stack([p] + [p] * n)
    v = verify_tree(
        Rule("sampling"), rows, torch.stack([q] * n) if n else q[:0], kids, [-1] * n, torch.rand(n, generator=g)
    )
    return kids[v.path[0]] if v.path else sample(v.next_probs, float(torch.rand(1, generator=g)))


@pytest.mark.parametrize("k", [2, 3])  # k = 1 is the chain, tested in test_rules
@pytest.mark.parametrize(
    ("p", "q"),
    [
        ([0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.4, 0.4]),
        ([0.05, 0.05, 0.9, 0.0], [0.9, 0.05, 0.05, 0.0]),
        ([0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]),
    ],
)
def test_multi_candidate_sampling_reproduces_p(p, q, k):
    """Lossless on trees: with k siblings drawn from q without replacement, the token emitted is
    distributed as p (total variation over 10,000 draws; its noise here is ~0.01)."""
    p_t, q_t = torch.tensor(p), torch.tensor(q)
    g = torch.Generator().manual_seed(k)
    n = 10_000
    counts = torch.zeros(4, dtype=torch.float64)
    for _ in range(n):
        counts[_emit_first(p_t, q_t, k, g)] += 1
    tv = 0.5 * float((counts / n - p_t.double()).abs().sum())
    assert tv < 0.03


def test_tree_shapes_parse_and_size():
    assert TreeShape.parse("chain").kind == "chain" and TreeShape.parse("auto").kind == "auto"
    s = TreeShape.parse("3,2,1,1")
    assert (s.kind, s.size, s.depth, s.text) == ("static", 3 + 6 + 6 + 6, 4, "3,2,1,1")
    d = TreeShape.parse("dynamic:16")
    assert (d.nodes, d.depth, d.topk, d.text) == (16, 6, 4, "dynamic:16:6:4")
    for bad in ("", "0,2", "tree", "dynamic:0", "9,9,9,9"):
        with pytest.raises(ValueError, match="tree shape"):
            TreeShape.parse(bad)


SHAPES = ["1,1,1,1", "2,2,1", "3,2,2,1", "dynamic:12:5:3"]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rule", ["greedy", "sampling"])
@pytest.mark.parametrize("kind", ["model", "ngram", "model+lookup"])
def test_greedy_tree_output_equals_target_generate(target, draft_lm, shape, rule, kind):
    cfg = DecodeConfig(
        rule=make_rule(rule), sampling=Sampling(0), max_new_tokens=24, seed=3, tree=TreeShape.parse(shape)
    )
    trace = Recording(target, drafter_for(kind, target, draft_lm), "", cfg, prompt_ids=PROMPT).run()
    assert trace["output"]["token_ids"] == hf_greedy(target, PROMPT, 24)
    assert validate(trace) == [] and validate(loads(dumps(trace))) == []
    assert trace["meta"]["tree"]["shape"] == TreeShape.parse(shape).text
    if kind == "model+lookup":  # greedy trees hold the copy beside the model's drafts, marked
        assert any(n.get("copied") for s in trace["steps"] for n in s["tree"]["nodes"])


def test_a_one_branch_tree_is_the_chain(target, draft_lm):
    """Same seed, same draws: the tree code with shape 1,1,1,1 makes the chain's steps exactly."""
    common = dict(gamma=4, rule=make_rule("sampling"), sampling=Sampling(0.8), max_new_tokens=30, seed=3)
    chain = list(speculative_decode(target, ModelDrafter(draft_lm, target.vocab_size), PROMPT, DecodeConfig(**common)))
    tree_cfg = DecodeConfig(**common, tree=TreeShape.parse("1,1,1,1"))
    tree = list(speculative_decode(target, ModelDrafter(draft_lm, target.vocab_size), PROMPT, tree_cfg))

    def key(s):
        return s["n_accepted"], [d["token_id"] for d in s["draft"]], s["next"] and s["next"]["token_id"]

    assert [key(s) for s in chain] == [key(s) for s in tree]


def test_first_token_distribution_matches_target_with_a_tree(target, draft_lm):
    """Lossless on trees: the first emitted token of a 3-wide, 2-deep tree step is distributed as p."""
    n = 1200
    p = torch.softmax(target.forward(target.new_cache(), PROMPT)[-1], -1).double()
    counts = torch.zeros_like(p)
    drafter = ModelDrafter(draft_lm, target.vocab_size)
    shape = TreeShape.parse("3,1")
    for seed in range(n):
        cfg = DecodeConfig(rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=3, seed=seed, tree=shape)
        step = next(speculative_decode(target, drafter, PROMPT, cfg))
        counts[step["draft"][0]["token_id"] if step["n_accepted"] else step["next"]["token_id"]] += 1
    assert_chi_square_fits(counts, p, n)


def test_tree_steps_record_every_node_and_the_main_line(target, draft_lm):
    cfg = DecodeConfig(
        rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=30, seed=4, tree=TreeShape.parse("3,2")
    )
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert validate(trace) == []
    for s in trace["steps"]:
        t = s["tree"]
        assert len(t["nodes"]) <= 9 and t["main"][: s["n_accepted"]] == t["path"]
        assert [d["token_id"] for d in s["draft"]] == [t["nodes"][j]["token_id"] for j in t["main"]]
    broken = loads(dumps(trace))
    step = next(s for s in broken["steps"] if s["tree"]["path"])
    step["tree"]["nodes"][step["tree"]["path"][0]]["accepted"] = False
    assert any("tree" in e for e in validate(broken))
    # a node under a rejected (off-path) node marked as tested; a path end whose child went untested
    broken = loads(dumps(trace))
    step = next(
        s
        for s in broken["steps"]
        if any(n["parent"] >= 0 and n["parent"] not in s["tree"]["path"] for n in s["tree"]["nodes"])
    )
    off = next(n for n in step["tree"]["nodes"] if n["parent"] >= 0 and n["parent"] not in step["tree"]["path"])
    off["accepted"] = False
    assert any("not on the accepted path" in e for e in validate(broken))
    broken = loads(dumps(trace))
    step = next(s for s in broken["steps"] if s["next"]["kind"] == "correction")
    end = step["tree"]["path"][-1] if step["tree"]["path"] else -1
    next(n for n in step["tree"]["nodes"] if n["parent"] == end)["accepted"] = None
    assert any("tree" in e for e in validate(broken))


def test_version_1_traces_read_as_chains(target, draft_lm):
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=12)
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    text = dumps(trace).replace('"version": 2', '"version": 1', 1)
    old = loads(text)
    assert old["version"] == 2 and validate(old) == [] and all("tree" not in s for s in old["steps"])


def test_auto_chooses_the_budget_with_the_most_tokens_per_second():
    """treesize.choose: a budget-N tree accepts the leading path nodes created before node N."""
    from specviz.run.treesize import choose

    def step(path: list[int], depths_: list[int]) -> dict:
        return {"tree": {"path": path, "nodes": [{"depth": d} for d in depths_]}}

    # 8 nodes: the path runs through nodes 0, 4, 7; flat costs reward big trees, steep ones small ones
    steps = {4: [step([0, 4, 7], [1, 1, 1, 1, 2, 2, 2, 3])] * 3}
    flat = {1: 100.0, 8: 101.0, 64: 102.0}
    shape, rows = choose(flat, steps, draft_ms_per_level=1.0)
    assert (shape.topk, shape.kind) == (4, "dynamic") and shape.nodes >= 8
    assert next(r for r in rows if r["nodes"] == 8)["tokens_per_step"] == 4
    assert next(r for r in rows if r["nodes"] == 4)["tokens_per_step"] == 2
    steep = {1: 100.0, 2: 400.0, 64: 50000.0}
    assert choose(steep, steps, draft_ms_per_level=1.0)[0].nodes == 4
    # a chain (K = 1) that accepts as much wins when every extra position costs
    steps[1] = [step([0, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8])] * 3
    assert choose(steep, steps, draft_ms_per_level=1.0)[0].topk == 1


def test_grow_runs_the_draft_only_for_nodes_that_get_children():
    """A dynamic tree whose budget runs out feeds no further level, and at the last level only the
    nodes the budget lets have children (review: dynamic:8:8:4 made 3 draft passes where 1 is needed)."""
    from specviz.core.tree import grow

    fed: list[list[int]] = []
    v = 10

    def feed(nodes, tree):
        fed.append(list(nodes))
        return torch.full((len(nodes), v), 1.0 / v), None

    q = torch.softmax(torch.arange(v, dtype=torch.float32), -1)
    tree = grow(TreeShape.parse("dynamic:8:8:4"), q, None, feed, False, torch.Generator().manual_seed(0), 10)
    assert len(tree.token_ids) == 8 and depths(tree.parents) == [1] * 4 + [2] * 4
    assert fed == [[0]]  # depth 2: only the best node gets the 4 remaining children
    static = grow(TreeShape.parse("2,1"), q, None, feed, True, torch.Generator().manual_seed(0), 10)
    assert len(static.token_ids) == 4 and len(set(static.token_ids[:2])) == 2  # siblings drawn without replacement


def test_threshold_children_stay_inside_the_warped_support():
    """Lossy rules take the draft's most likely tokens, but never one top-k/top-p removed from q."""
    from specviz.core.tree import grow

    raw = torch.tensor([0.4, 0.3, 0.2, 0.1])
    q = torch.tensor([0.6, 0.4, 0.0, 0.0])  # top-2 warping
    tree = grow(TreeShape.parse("4"), q, raw, lambda n, t: (q[None], raw[None]), False, torch.Generator(), 1)
    assert tree.token_ids == [0, 1]


def test_validate_holds_the_main_line_to_its_nodes(target, draft_lm):
    """The chain view (draft/verify) of a tree step must carry its nodes' numbers, not others."""
    cfg = DecodeConfig(
        rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=12, seed=4, tree=TreeShape.parse("2,2")
    )
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert validate(trace) == []
    broken = loads(dumps(trace))
    step = next(s for s in broken["steps"] if s["draft"])
    step["draft"][0]["q"] = 0.5 if step["draft"][0]["q"] != 0.5 else 0.25
    assert any("is draft position 1, but its q" in e for e in validate(broken))
