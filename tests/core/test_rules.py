import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from specviz.core.rules import (
    Rule,
    accept_greedy,
    accept_sampling,
    accept_threshold,
    accept_typical,
    make_rule,
    n_leading,
    residual,
)
from specviz.core.warp import sample

VOCAB = ["The", "cat", "sat", "on", "the", "mat", "rug"]
ID = {w: i for i, w in enumerate(VOCAB)}


def one_hot(word: str) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ID[word]), len(VOCAB)).float()


def test_course_example_a_a_r_a_a_appends_two_drafts_then_the_evaluation_models_token():
    verdicts = torch.tensor([True, True, False, True, True])
    n = n_leading(verdicts)
    assert n == 2
    assert n + 1 == 3  # two accepted drafts, then the evaluation model's own token


def test_n_leading_edges():
    assert n_leading(torch.tensor([False, True])) == 0
    assert n_leading(torch.tensor([True, True, True])) == 3
    assert n_leading(torch.tensor([], dtype=torch.bool)) == 0


def test_course_example_the_cat_sat_on_the_rug():
    # draft proposed [on, the, mat]; the evaluation model prefers [on, the, rug]
    draft = torch.tensor([ID["on"], ID["the"], ID["mat"]])
    p = torch.stack([one_hot("on"), one_hot("the"), one_hot("rug"), one_hot("the")])  # [gamma+1, V]
    q = torch.stack([one_hot("on"), one_hot("the"), one_hot("mat")])
    for rule in (make_rule("greedy"), make_rule("sampling")):
        v = rule.verify(p, q, draft, torch.tensor([0.5, 0.5, 0.5]))
        assert v.n_accepted == 2
        probs, _ = rule.next_distribution(p[v.n_accepted], q[v.n_accepted])
        assert VOCAB[sample(probs, 0.3)] == "rug"


def test_bonus_token_comes_from_p_after_full_acceptance():
    rule = make_rule("sampling")
    p_row = torch.tensor([0.1, 0.9, 0, 0, 0, 0, 0])
    probs, source = rule.next_distribution(p_row, None)
    assert source == "p" and torch.equal(probs, p_row)


def test_sampling_rule_accepts_iff_r_below_ratio():
    p_x, q_x = torch.tensor([0.2, 0.5, 0.0]), torch.tensor([0.4, 0.25, 0.3])
    a, acc = accept_sampling(p_x, q_x, torch.tensor([0.49, 0.99, 0.0]))
    assert torch.allclose(a, torch.tensor([0.5, 1.0, 0.0]))
    assert acc.tolist() == [True, True, False]
    _, acc = accept_sampling(p_x, q_x, torch.tensor([0.5, 0.0, 0.0]))
    assert acc[0].item() is False  # r == accept_prob rejects: r < min(1, p/q) is strict


def test_greedy_threshold_typical():
    p = torch.tensor([[0.6, 0.4], [0.3, 0.7]])
    assert accept_greedy(p, torch.tensor([0, 0])).tolist() == [True, False]
    ratio, acc = accept_threshold(torch.tensor([0.3, 0.1]), torch.tensor([0.6, 0.5]), 0.3)
    assert acc.tolist() == [True, False] and torch.allclose(ratio, torch.tensor([0.5, 0.2]))
    cutoff, acc = accept_typical(p, torch.tensor([0.6, 0.3]), epsilon=0.09, delta=0.3)
    assert torch.all(cutoff <= 0.09) and acc.tolist() == [True, True]
    flat = torch.full((1, 100), 0.01)  # high entropy: delta * exp(-H) is tiny, so low p still passes
    cutoff, _ = accept_typical(flat, torch.tensor([0.01]), 0.09, 0.3)
    assert cutoff.item() == pytest.approx(0.3 / 100)


def test_make_rule_validates():
    assert make_rule("threshold").params == {"tau": 0.3}
    assert make_rule("typical", epsilon=0.2).params == {"epsilon": 0.2, "delta": 0.3}
    assert make_rule("sampling").lossless and not make_rule("threshold").lossless
    with pytest.raises(ValueError, match="unknown rule"):
        make_rule("magic")
    with pytest.raises(ValueError, match="takes no parameter"):
        make_rule("greedy", tau=0.5)
    with pytest.raises(ValueError, match="finite"):
        make_rule("threshold", tau=float("nan"))


def test_residual_falls_back_to_p_when_empty():
    p = torch.tensor([0.5, 0.5])
    assert torch.equal(residual(p, p), p)


dists = st.integers(2, 12).flatmap(
    lambda v: st.tuples(
        st.lists(st.floats(0, 1), min_size=v, max_size=v).filter(lambda xs: sum(xs) > 1e-3),
        st.lists(st.floats(0, 1), min_size=v, max_size=v).filter(lambda xs: sum(xs) > 1e-3),
    )
)


def _norm(xs: list[float]) -> torch.Tensor:
    t = torch.tensor(xs, dtype=torch.float64)
    return t / t.sum()


@settings(max_examples=200, deadline=None)
@given(dists, st.floats(0, 0.999999))
def test_properties_of_sampling_rule(pq, r):
    p, q = _norm(pq[0]), _norm(pq[1])
    x = torch.arange(len(p))
    a, acc = accept_sampling(p, q, torch.full_like(p, r))
    assert torch.all((a >= 0) & (a <= 1))
    assert torch.equal(acc, r < a)
    res = residual(p, q)
    assert abs(float(res.sum()) - 1) < 1e-9 and torch.all(res >= 0)
    # where q under-covers p the residual is positive, elsewhere zero
    if float((p - q).clamp_min(0).sum()) > 0:
        assert torch.all((res > 0) == (p > q))
    assert x.numel() == len(p)


def _simulate(p: torch.Tensor, q: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """One draft position of speculative sampling, n times, vectorised: returns emitted tokens."""
    g = torch.Generator().manual_seed(seed)
    rule = Rule("sampling")
    x = torch.multinomial(q, n, replacement=True, generator=g)
    r = torch.rand(n, generator=g)
    _, acc = accept_sampling(p[x], q[x], r)
    res, _ = rule.next_distribution(p, q)
    corr = torch.searchsorted(res.cumsum(0), torch.rand(n, generator=g) * res.sum(), right=True).clamp(max=len(p) - 1)
    return torch.where(acc, x, corr)


@pytest.mark.parametrize(
    ("p", "q"),
    [
        ([0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.4, 0.4]),
        ([0.05, 0.05, 0.9], [0.9, 0.05, 0.05]),
        ([0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]),
        ([1.0, 0.0], [0.0, 1.0]),
    ],
)
def test_speculative_sampling_reproduces_p(p, q):
    p_t, q_t = torch.tensor(p), torch.tensor(q)
    n = 200_000
    counts = torch.bincount(_simulate(p_t, q_t, n, seed=1), minlength=len(p)).double()
    tv = 0.5 * float((counts / n - p_t.double()).abs().sum())
    # sampling noise of TV at n=2e5 over <=4 outcomes is ~0.002; 0.01 leaves a wide margin
    assert tv < 0.01


def test_an_empty_residual_says_the_token_came_from_p() -> None:
    """Public report: next.source read "residual" when p == q left nothing and p was sampled."""
    p = torch.tensor([0.5, 0.3, 0.2])
    probs, source = make_rule("threshold", tau=2.0).next_distribution(p, p.clone())
    assert source == "p" and torch.equal(probs, p)
    _, source = make_rule("sampling").next_distribution(p, torch.tensor([0.2, 0.3, 0.5]))
    assert source == "residual"
