"""Warping (temperature, top-k, top-p) and inverse-CDF sampling."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from specviz.core.warp import Sampling, sample, warp

LOGITS = torch.tensor([1.0, 3.0, 2.0, 3.0, -1.0, 0.5])


def test_temperature_zero_is_one_hot_on_the_first_argmax() -> None:
    p = warp(LOGITS, Sampling(0))
    assert p.tolist() == [0, 1, 0, 0, 0, 0]  # 1 and 3 tie: the first wins, as in HF greedy search
    batch = warp(torch.stack([LOGITS, -LOGITS]), Sampling(0, top_k=2, top_p=0.5))
    assert batch.argmax(-1).tolist() == [1, 4] and batch.sum(-1).tolist() == [1, 1]


def test_temperature_scales_logits() -> None:
    for t in (0.5, 1.0, 2.0):
        assert torch.allclose(warp(LOGITS, Sampling(t)), torch.softmax(LOGITS / t, -1))
    assert warp(LOGITS, Sampling(1e-3))[1] == pytest.approx(0.5, abs=1e-6)  # cold: the two tied maxima share


def test_top_k_keeps_the_k_largest() -> None:
    p = warp(torch.tensor([0.1, 2.0, 1.0, 3.0, -1.0]), Sampling(1.0, top_k=2))
    assert (p > 0).tolist() == [False, True, False, True, False]
    assert torch.allclose(p[[1, 3]], torch.softmax(torch.tensor([2.0, 3.0]), -1))
    assert (warp(LOGITS, Sampling(1.0, top_k=1)) > 0).sum() == 2  # a tie at the k-th value keeps both
    assert torch.equal(warp(LOGITS, Sampling(1.0, top_k=100)), warp(LOGITS, Sampling(1.0)))


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    logits = torch.tensor([0.25, 0.5, 0.1, 0.15]).log()  # by probability: 0.5, 0.25, 0.15, 0.1
    keep = lambda top_p: (warp(logits, Sampling(1.0, top_p=top_p)) > 0).tolist()  # noqa: E731
    assert keep(0.45) == [False, True, False, False]  # 0.5 alone reaches 0.45
    assert keep(0.6) == [True, True, False, False]  # 0.5 + 0.25 = 0.75 >= 0.6
    assert keep(0.8) == [True, True, False, True]  # + 0.15 = 0.9
    assert keep(0.95) == [True, True, True, True]
    assert keep(0.01) == [False, True, False, False]  # the top token always stays
    p = warp(logits, Sampling(1.0, top_p=0.6))
    assert torch.allclose(p, torch.tensor([0.25, 0.5, 0.0, 0.0]) / 0.75)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-20, 20), min_size=2, max_size=30),
    st.floats(0.05, 3),
    st.integers(0, 40),
    st.floats(0.01, 1.0),
)
def test_warp_is_a_distribution_and_top_k_top_p_only_remove(
    logits: list[float], temperature: float, top_k: int, top_p: float
) -> None:
    x = torch.tensor(logits)
    p = warp(x, Sampling(temperature, top_k, top_p))
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5) and (p >= 0).all()
    assert (p[x == x.max()] > 0).any()  # the most likely token survives every cut
    full = warp(x, Sampling(temperature))
    kept = p > 0
    # renormalised over what was kept, nothing else changes
    assert torch.allclose(p[kept], full[kept] / full[kept].sum(), atol=1e-5)


def test_sample_is_the_inverse_cdf() -> None:
    probs = torch.tensor([0.1, 0.0, 0.6, 0.3])
    assert [sample(probs, u) for u in (0.0, 0.0999, 0.1001, 0.5, 0.6999, 0.7001, 0.9999999)] == [0, 0, 2, 2, 2, 3, 3]
    # a grid of u reproduces the distribution exactly
    n = 1000
    counts = torch.bincount(torch.tensor([sample(probs, (i + 0.5) / n) for i in range(n)]), minlength=4)
    assert (counts.double() / n).tolist() == pytest.approx(probs.tolist(), abs=1.5 / n)
    assert sample(probs * 7, 0.5) == 2  # unnormalised weights work too


distributions = st.lists(st.one_of(st.just(0.0), st.floats(1e-12, 1.0)), min_size=1, max_size=40).filter(
    lambda w: sum(w) > 0
)


@settings(max_examples=300, deadline=None)
@given(distributions, st.one_of(st.floats(0, 1, exclude_max=True), st.sampled_from([0.0, 1 - 1e-16, 0.999999999])))
def test_sample_never_returns_a_zero_probability_token(weights: list[float], u: float) -> None:
    probs = torch.tensor(weights, dtype=torch.float32)
    probs = probs / probs.sum()
    x = sample(probs, u)
    assert 0 <= x < len(weights) and probs[x] > 0
    # it is the first index whose cumulative mass exceeds u (up to float round-off at the top end)
    cdf = probs.double().cumsum(0)
    above = cdf > u * float(cdf[-1])
    if above.any():
        assert x == int(above.nonzero()[0])


def test_sampling_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="temperature"):
        Sampling(-0.1)
    with pytest.raises(ValueError, match="top_k"):
        Sampling(1.0, top_k=-1)
    for top_p in (0.0, 1.5):
        with pytest.raises(ValueError, match="top_p"):
            Sampling(1.0, top_p=top_p)
    assert Sampling(0).greedy and not Sampling(0.1).greedy


@pytest.mark.parametrize("temperature", [1e-40, 1e-300, 5e-324])
def test_a_temperature_too_small_to_represent_is_greedy(temperature: float) -> None:
    """Public report: T = 1e-40 overflowed logits / T to inf and sampled NaN probabilities."""
    logits = torch.tensor([1.0, 3.0, -2.0, 2.5])
    probs = warp(logits, Sampling(temperature))
    assert torch.isfinite(probs).all()
    assert probs.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert warp(logits, Sampling(temperature, top_k=2, top_p=0.5)).tolist() == [0.0, 1.0, 0.0, 0.0]
