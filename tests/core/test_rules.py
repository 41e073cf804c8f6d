import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from specviz.core.rules import (
    KINDS,
    RULES,
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


def test_every_rule_is_one_kind_in_one_table() -> None:
    """Issue 24: a rule's name, parameters, losslessness, use of r, correction and tree behaviour live
    in its RuleKind; make_rule and Rule read them from there."""
    assert tuple(KINDS) == RULES and all(name == kind.name for name, kind in KINDS.items())
    for name, kind in KINDS.items():
        rule = make_rule(name)
        assert rule.kind is kind and rule.params == dict(kind.defaults)
        assert (rule.lossless, rule.uses_random, rule.recursive) == (kind.lossless, kind.uses_random, kind.recursive)
        assert kind.correction in ("residual", "p", "argmax")
    assert [n for n, k in KINDS.items() if k.lossless] == ["sampling", "greedy"]
    assert [n for n, k in KINDS.items() if k.uses_random] == ["sampling"]
    with pytest.raises(ValueError, match="unknown rule"):
        Rule("magic")


def _case(seed: int, k: int = 6, v: int = 7) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """k rows of p and q (p near q, so that some drafts pass), drafts x ~ q, uniforms r."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(k, v, generator=g)
    q = torch.softmax(logits, -1)
    p = torch.softmax(logits + 0.7 * torch.randn(k, v, generator=g), -1)
    x = torch.multinomial(q, 1, generator=g).view(-1)
    return p, q, x, torch.rand(k, generator=g)


@pytest.mark.parametrize("name", RULES)
def test_a_rules_test_is_the_accept_function_and_reads_float64_numbers_alike(name: str) -> None:
    """Rule.verify runs the rule's test on gamma rows at once (float32); the tree runs the same test on
    one row at a time with p(x), q(x), r as float64 on the CPU: the decisions agree."""
    rule = make_rule(name, **({"tau": 0.8} if name == "threshold" else {}))
    for seed in range(20):
        p, q, x, r = _case(seed)
        p_x, q_x = p.gather(-1, x[:, None]).view(-1), q.gather(-1, x[:, None]).view(-1)
        accepted, numbers = rule.test(p, p_x, q_x, x, r)
        if name == "sampling":
            expected = accept_sampling(p_x, q_x, r)[1]
        elif name == "greedy":
            expected = accept_greedy(p, x)
        elif name == "threshold":
            expected = accept_threshold(p_x, q_x, 0.8)[1]
        else:
            expected = accept_typical(p, p_x, 0.09, 0.3)[1]
        assert torch.equal(accepted, expected)
        for j in range(len(x)):
            one, nums = rule.test(
                p[j][None], p_x[j : j + 1].double(), q_x[j : j + 1].double(), x[j : j + 1], r[j : j + 1].double()
            )
            assert bool(one[0]) == bool(accepted[j])
            assert set(nums) == set(numbers)
            for key, value in nums.items():
                assert float(value[0]) == pytest.approx(float(numbers[key][j]), rel=1e-6)
        v = rule.verify(torch.cat([p, p[:1]]), q, x, r)
        assert torch.equal(v.accepted, accepted) and v.n_accepted == n_leading(accepted)
