"""Drafters: prompt lookup copies the latest match; the model drafter's cache survives rollbacks."""

from __future__ import annotations

import pytest
import torch

from specviz.core.drafting import Drafter
from specviz.core.rules import Rule, make_rule
from specviz.core.tree import DraftTree, TreeShape, verify_tree
from specviz.core.warp import Sampling, sample
from specviz.drafters.model import ModelDrafter
from specviz.drafters.ngram import LookupFallback, NgramDrafter, continuations
from specviz.models.lm import CausalLM

V = 50


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def ngram(ids: list[int], gamma: int, **kw: int) -> list[int]:
    return NgramDrafter(V, **kw).propose(ids, gamma, Sampling(), gen()).token_ids


def test_both_drafters_fit_the_protocol(draft_lm: CausalLM) -> None:
    assert isinstance(NgramDrafter(V), Drafter) and isinstance(ModelDrafter(draft_lm, V), Drafter)


def test_ngram_copies_the_continuation_of_the_latest_match() -> None:
    ids = [1, 2, 3, 9, 1, 2, 3, 7, 5, 8, 1, 2, 3]
    assert ngram(ids, 3) == [7, 5, 8]  # the latest earlier [1, 2, 3] is followed by 7, not 9
    assert ngram(ids, 1) == [7]
    assert ngram(ids, 6) == [7, 5, 8, 1, 2, 3]  # up to gamma, running into the tail itself


def test_ngram_prefers_the_longest_ngram() -> None:
    # the last token 3 was last followed by 4, but the 2-gram [2, 3] by 6
    ids = [2, 3, 6, 6, 3, 4, 0, 2, 3]
    assert ngram(ids, 2) == [6, 6]
    assert ngram(ids, 2, max_ngram=1) == [4, 0]


def test_ngram_returns_fewer_or_none() -> None:
    assert ngram([5, 6, 5], 4) == [6, 5]  # only two tokens follow the match
    assert ngram([1, 2, 3, 4], 4) == []  # nothing repeats
    assert ngram([7], 4) == [] and ngram([], 4) == []
    assert ngram([1, 2, 1], 0) == []
    p = NgramDrafter(V).propose([1, 2, 3, 4], 4, Sampling(), gen())
    assert p.q.shape == (0, V)


def test_ngram_q_is_one_hot() -> None:
    p = NgramDrafter(V).propose([1, 2, 3, 9, 1, 2, 3], 3, Sampling(0.7, top_k=5), gen())
    assert p.token_ids == [9, 1, 2]
    assert p.q.shape == (3, V) and torch.equal(p.q.sum(-1), torch.ones(3))
    assert p.q[torch.arange(3), torch.tensor(p.token_ids)].tolist() == [1.0, 1.0, 1.0]


CTX = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]


@pytest.mark.parametrize("sampling", [Sampling(0), Sampling(1.0), Sampling(0.8, top_k=10, top_p=0.9)])
def test_model_drafter_after_rollback_equals_a_fresh_one(draft_lm: CausalLM, sampling: Sampling) -> None:
    """Its cache, trimmed to the accepted prefix and extended, gives what a fresh drafter computes."""
    vocab = draft_lm.vocab_size
    used = ModelDrafter(draft_lm, vocab)
    first = used.propose(CTX, 4, sampling, gen(1))
    ctx = [*CTX, first.token_ids[0], 11]  # one draft accepted, then the target's correction
    for context in (ctx, [*ctx, 12, 13], [*CTX[:4], 20, 21]):  # extend, then diverge well before the cache end
        again = used.propose(context, 3, sampling, gen(2))
        fresh = ModelDrafter(draft_lm, vocab).propose(context, 3, sampling, gen(2))
        assert again.token_ids == fresh.token_ids
        assert torch.allclose(again.q, fresh.q, atol=1e-5)


def test_model_drafter_q_rows_are_distributions(draft_lm: CausalLM) -> None:
    for vocab in (draft_lm.vocab_size, draft_lm.vocab_size + 6):  # a target with a wider logits row pads q
        p = ModelDrafter(draft_lm, vocab).propose(CTX, 4, Sampling(1.0), gen(3))
        assert p.q.shape == (4, vocab) and len(p.token_ids) == 4
        assert torch.allclose(p.q.sum(-1), torch.ones(4), atol=1e-5)
        assert (p.q[torch.arange(4), torch.tensor(p.token_ids)] > 0).all()  # each draft had q(x) > 0
        assert (p.q[:, draft_lm.vocab_size :] == 0).all()


def test_model_drafter_greedy_matches_the_draft_models_argmax(draft_lm: CausalLM) -> None:
    p = ModelDrafter(draft_lm, draft_lm.vocab_size).propose(CTX, 3, Sampling(0), gen())
    ids = list(CTX)
    for x in p.token_ids:
        assert x == int(draft_lm.forward(draft_lm.new_cache(), ids)[-1].argmax())
        ids.append(x)
    assert p.q.max(-1).values.tolist() == [1.0, 1.0, 1.0]


def test_model_drafter_gamma_zero(draft_lm: CausalLM) -> None:
    p = ModelDrafter(draft_lm, 44).propose(CTX, 0, Sampling(), gen())
    assert p.token_ids == [] and p.q.shape == (0, 44)


# prompt lookup as a draft model's fallback


def test_lookup_fallback_finds_what_followed_the_longest_match() -> None:
    fb = LookupFallback(0.5)
    assert fb.find([2, 3, 6, 6, 3, 4, 0, 2, 3], V) == (6, 2)  # [2, 3] matched, not just [3]
    assert fb.find([1, 2, 3, 4], V) is None  # nothing repeats
    assert fb.find([5, 3, 5], V) is None  # a 1-gram match is below min_ngram 2
    assert LookupFallback(0.5, min_ngram=1).find([5, 3, 5], V) == (3, 1)
    assert fb.find([1, 2, 60, 1, 2], V) is None  # what followed is outside the target's vocabulary
    assert continuations([1, 2, 9, 1, 2, 8, 1, 2], 2, 5, 2, 3, V) == ([[8, 1], [9, 1]], 2)


@pytest.mark.parametrize("sampling", [Sampling(0), Sampling(1.0)])
def test_the_fallback_copies_only_where_the_model_is_unsure(draft_lm: CausalLM, sampling: Sampling) -> None:
    plain = ModelDrafter(draft_lm, V).propose(CTX, 4, sampling, gen(5))
    never = ModelDrafter(draft_lm, V, lookup=LookupFallback(0.0)).propose(CTX, 4, sampling, gen(5))
    assert never.token_ids == plain.token_ids and never.copied == [0, 0, 0, 0] and plain.copied == []
    always = ModelDrafter(draft_lm, V, lookup=LookupFallback(1.0)).propose(CTX, 4, sampling, gen(5))
    # CTX ends "3 4 5", which followed "3 4" before; then "5 6", "6 3" and "3 7" go on copying
    assert always.token_ids == [6, 3, 7, 3] and always.copied == [3, 3, 3, 3]
    assert always.q.max(-1).values.tolist() == [1.0] * 4  # a copy is a draft from a one-hot q
    if always.q_raw is not None:
        assert torch.equal(always.q_raw, always.q)


def test_the_confidence_stop_reads_the_models_own_q_under_greedy(draft_lm: CausalLM) -> None:
    """Greedy's warped q is one-hot (q(x) = 1 always): the stop must read the model's own probability."""
    short = ModelDrafter(draft_lm, V).propose(CTX, 4, Sampling(0), gen(), min_confidence=1.0)
    assert len(short.token_ids) == 1
    assert len(ModelDrafter(draft_lm, V).propose(CTX, 4, Sampling(0), gen(), min_confidence=0.0).token_ids) == 4
    # a copy goes on: the model's own q says nothing of how likely a copy is
    copying = ModelDrafter(draft_lm, V, lookup=LookupFallback(1.0))
    assert copying.propose(CTX, 4, Sampling(0), gen(), min_confidence=1.0).copied == [3, 3, 3, 3]


def _model_tree(tokens: list[int], parents: list[int], top: float = 0.4) -> DraftTree:
    """A stand-in model tree whose every node was drawn from a q with best probability `top`."""
    q = torch.full((len(tokens), V), (1 - top) / (V - 1))
    q[torch.arange(len(tokens)), torch.tensor(tokens)] = top
    return DraftTree(tokens, parents, q, None, [top] * len(tokens))


def test_a_copy_hangs_beside_the_model_tree_where_it_parts() -> None:
    ctx = [1, 2, 3, 4, 5, 9, 2, 3]  # [2, 3] was followed by 4, 5, 9
    fb = LookupFallback(0.7)
    tree = fb.graft(_model_tree([4, 8, 7], [-1, -1, 0]), ctx, 3, V)  # the model's 4 then 7; 8 beside 4
    assert tree.token_ids == [4, 8, 7, 5, 9] and tree.parents == [-1, -1, 0, 0, 3]
    assert tree.copied == [0, 0, 0, 3, 3]  # [2, 3, 4] is matched where 5 hangs
    assert tree.q[3:].max(-1).values.tolist() == [1.0, 1.0] and tree.q[3, 5] == 1.0
    # the model sure of its own children there: nothing hangs
    assert fb.graft(_model_tree([4, 8, 7], [-1, -1, 0], top=0.9), ctx, 3, V).token_ids == [4, 8, 7, 5, 9][:3]
    assert fb.graft(_model_tree([6], [-1]), [1, 2, 3, 4], 3, V).token_ids == [6]  # nothing repeats
    whole = fb.graft(_model_tree([4, 5], [-1, 0]), ctx, 2, V)  # the model's tree holds the whole copy
    assert whole.token_ids == [4, 5] and whole.copied == []


def test_a_threshold_test_reads_a_copied_nodes_own_q() -> None:
    """Each sibling is tested against its own q: the model's (p/q = 0.3/0.4) and the copy's one-hot one (0.6/1)."""
    tree = LookupFallback(0.7).graft(_model_tree([4], [-1]), [1, 2, 3, 5, 9, 2, 3], 1, V)
    assert tree.token_ids == [4, 5]
    p = torch.zeros(3, V)
    p[:, 4], p[:, 5] = 0.3, 0.6
    v = verify_tree(make_rule("threshold", tau=0.7), p, tree.q, tree.token_ids, tree.parents, torch.zeros(2))
    assert v.accepted == [True, None] and v.ratio[0] == pytest.approx(0.75)
    v = verify_tree(make_rule("threshold", tau=0.8), p, tree.q, tree.token_ids, tree.parents, torch.zeros(2))
    assert v.accepted == [False, False] and v.ratio[1] == pytest.approx(0.6)


def test_a_greedy_model_tree_holds_the_copy_and_a_sampled_one_does_not(draft_lm: CausalLM) -> None:
    shape = TreeShape.parse("2,1")
    drafter = ModelDrafter(draft_lm, V, lookup=LookupFallback(1.0))
    greedy = drafter.propose_tree(CTX, shape, Sampling(0), gen(), False, 8)
    plain = ModelDrafter(draft_lm, V).propose_tree(CTX, shape, Sampling(0), gen(), False, 8)
    assert greedy.token_ids[: len(plain.token_ids)] == plain.token_ids
    # CTX ends "3 4 5", which followed "3 4" before: the copy 6, 3 hangs from the root unless the model has it
    copies = [x for x, c in zip(greedy.token_ids, greedy.copied, strict=True) if c]
    assert copies and greedy.copied[: len(plain.token_ids)] == [0] * len(plain.token_ids)
    sampled = drafter.propose_tree(CTX, shape, Sampling(1.0), gen(), True, 8)
    assert sampled.copied == []


# prompt lookup as a tree: several matches become branches

ABC = [1, 2, 3, 9, 8, 1, 2, 3, 7, 6, 1, 2, 3, 7, 5, 1, 2, 3]  # [1, 2, 3] was followed by 9, 7, 7


def ngram_tree(ids: list[int], shape: str, sampled: bool = False, seed: int = 0, depth: int = 8):
    return NgramDrafter(V).propose_tree(ids, TreeShape.parse(shape), Sampling(), gen(seed), sampled, depth)


def test_ngram_tree_merges_matches_into_branches() -> None:
    tree = ngram_tree(ABC, "2,2")
    # root: 7 (twice, the latest first) then 9; below 7 the two matches part ways (5 latest, then 6)
    assert tree.token_ids == [7, 9, 5, 6, 8] and tree.parents == [-1, -1, 0, 0, 1]
    assert float(tree.q[0, 7]) == pytest.approx(2 / 3, abs=1e-3) and float(tree.q[1, 9]) == pytest.approx(
        1 / 3, abs=1e-3
    )
    assert float(tree.q[2, 5]) == pytest.approx(0.5, abs=1e-3) and float(tree.q[4, 8]) == 1.0
    assert torch.allclose(tree.q.sum(-1), torch.ones(5))
    assert tree.score[2] == pytest.approx(float(tree.q[0, 7]) * float(tree.q[2, 5]))


def test_ngram_tree_with_one_match_is_the_chain() -> None:
    ids = [4, 1, 2, 3, 7, 5, 8, 6, 1, 2, 3]
    tree = ngram_tree(ids, "3,3,3,3")
    assert tree.token_ids == ngram(ids, 4) == [7, 5, 8, 6] and tree.parents == [-1, 0, 1, 2]
    assert tree.q.max(-1).values.tolist() == [1.0] * 4  # one-hot, as in the chain


def test_ngram_tree_respects_the_shape_and_the_budget() -> None:
    assert len(ngram_tree(ABC, "1,1").token_ids) == 2  # one child per depth
    assert ngram_tree(ABC, "dynamic:3:4:2").token_ids == [7, 9, 5]  # 3 nodes at most
    assert ngram_tree(ABC, "2,2,2", depth=1).token_ids == [7, 9]  # the token budget cuts depth
    assert ngram_tree([1, 2, 3, 4], "2,2").why_empty == "no_match"
    assert ngram_tree(ABC, "2,2", depth=0).why_empty == "budget"


def _emitted(p: torch.Tensor, shape: str, depth: int, draws: int, seed: int) -> list[tuple[int, int]]:
    """The first two tokens of `draws` speculative steps with prompt-lookup trees of `shape` over ABC,
    every row of p the same p. After a rejection the second token is the next step's first, which
    with the same p is drawn from p."""
    g = gen(seed)
    out: list[tuple[int, int]] = []
    for i in range(draws):
        tree = ngram_tree(ABC, shape, sampled=True, seed=seed * draws + i, depth=depth)
        k = len(tree.token_ids)
        rows = torch.stack([p] * (k + 1))
        v = verify_tree(Rule("sampling"), rows, tree.q, tree.token_ids, tree.parents, torch.rand(k, generator=g))
        toks = [tree.token_ids[j] for j in v.path] + [sample(v.next_probs, float(torch.rand(1, generator=g)))]
        if len(toks) < 2:
            toks.append(sample(p, float(torch.rand(1, generator=g))))
        out.append((toks[0], toks[1]))
    return out


def test_ngram_tree_under_sampling_keeps_p() -> None:
    """Siblings drawn from the lookup's q without replacement, tested by recursive rejection: the
    first emitted token is distributed as p (total variation over 4,000 draws)."""
    p = torch.zeros(V)
    p[[7, 9, 5]] = torch.tensor([0.2, 0.5, 0.3])
    n = 4000
    counts = torch.zeros(V, dtype=torch.float64)
    for first, _ in _emitted(p, "2", 1, n, seed=1):
        counts[first] += 1
    assert 0.5 * float((counts / n - p.double()).abs().sum()) < 0.04


def test_ngram_tree_two_levels_under_sampling_keep_p_for_both_tokens() -> None:
    """Deeper nodes have path-dependent q (0.5/0.5 below 7, one-hot below 9): the first two emitted
    tokens are still distributed as p ⊗ p when every row of p is the same (TV over 6,000 draws)."""
    support = [5, 6, 7, 8, 9]
    p = torch.zeros(V)
    p[support] = torch.tensor([0.15, 0.25, 0.2, 0.1, 0.3])
    n = 6000
    counts: dict[tuple[int, int], int] = {}
    for pair in _emitted(p, "2,2", 2, n, seed=2):
        counts[pair] = counts.get(pair, 0) + 1
    tv = 0.5 * sum(abs(counts.get((a, b), 0) / n - float(p[a] * p[b])) for a in support for b in support)
    assert tv < 0.06


def test_ngram_tree_stops_at_tokens_the_target_cannot_score() -> None:
    ids = [1, 2, 3, 7, V + 5, 6, 1, 2, 3]  # V + 5 is past the target's vocabulary
    assert ngram_tree(ids, "2,2,2").token_ids == [7]


def test_ngram_tree_with_a_chain_shape_is_the_chain_proposal() -> None:
    ids = [4, 1, 2, 3, 7, 5, 8, 6, 1, 2, 3]
    tree = ngram_tree(ids, "chain", depth=3)
    assert tree.token_ids == ngram(ids, 3) and tree.parents == [-1, 0, 1]
