"""The adaptive draft length policy and the draft's confidence stop: still lossless, still valid traces."""

from __future__ import annotations

import pytest
import torch

from specviz.core.decoder import DecodeConfig, GammaPolicy
from specviz.core.rules import make_rule
from specviz.core.warp import Sampling
from specviz.drafters.model import ModelDrafter
from specviz.drafters.ngram import NgramDrafter
from specviz.models.lm import CausalLM
from specviz.run.record import Recording
from specviz.trace import validate

PROMPT = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]


def hf_greedy(lm: CausalLM, ids: list[int], n: int) -> list[int]:
    x = torch.tensor([ids])
    out = lm.model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=n, pad_token_id=0)
    return out[0, len(ids) :].tolist()


def test_heuristic_schedule_is_transformers_rule():
    pol = GammaPolicy(start=4)
    assert pol.next(4, 4, 4, 4, max_gamma=8) == 6  # all accepted: +2
    assert pol.next(6, 6, 6, 6, max_gamma=8) == 8  # capped at the maximum
    assert pol.next(4, 4, 4, 2, max_gamma=8) == 3  # a rejection: −1
    assert pol.next(1, 1, 1, 0, max_gamma=8) == 1  # never below min_gamma
    assert pol.next(4, 4, 2, 2, max_gamma=8) == 3  # drafted fewer than asked (confidence stop): −1
    assert GammaPolicy("constant", start=3).next(3, 3, 3, 3, max_gamma=8) == 3


@pytest.mark.parametrize("bad", [dict(name="pid"), dict(start=0), dict(min_gamma=3, start=2), dict(confidence=1.5)])
def test_bad_policies_are_refused(bad):
    with pytest.raises(ValueError):
        GammaPolicy(**bad)


@pytest.mark.parametrize("kind", ["model", "ngram"])
@pytest.mark.parametrize("confidence", [None, 0.5])
def test_adaptive_greedy_output_equals_target(target, draft_lm, kind, confidence):
    policy = GammaPolicy(start=2, confidence=confidence)
    cfg = DecodeConfig(
        gamma=8, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=30, seed=1, gamma_policy=policy
    )
    drafter = ModelDrafter(draft_lm, target.vocab_size) if kind == "model" else NgramDrafter(target.vocab_size)
    trace = Recording(target, drafter, "", cfg, prompt_ids=PROMPT).run()
    assert trace["output"]["token_ids"] == hf_greedy(target, PROMPT, 30)
    assert validate(trace) == []
    meta = trace["meta"]
    assert meta["gamma"] == 8
    assert meta["gamma_policy"] == {
        "name": "heuristic",
        "start": 2,
        "increase": 2,
        "decrease": 1,
        "min": 1,
        "max": 8,
        "confidence": confidence,
    }


def test_adaptive_sampling_trace_follows_the_schedule(target, draft_lm):
    cfg = DecodeConfig(
        gamma=6,
        rule=make_rule("sampling"),
        sampling=Sampling(1.0),
        max_new_tokens=60,
        seed=4,
        gamma_policy=GammaPolicy(start=3),
    )
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert validate(trace) == []
    steps = trace["steps"]
    planned, made = 3, 0
    for s in steps:
        g = len(s["draft"])
        assert g == min(planned, 60 - made - 1)  # the model drafter always drafts what it is asked
        planned = min(planned + 2, 6) if s["n_accepted"] == g > 0 else max(planned - 1, 1)
        made += s["n_accepted"] + (1 if s["next"] else 0)
    assert len({len(s["draft"]) for s in steps}) > 1  # the length actually moved


def test_confidence_stop_drafts_fewer(target, draft_lm):
    def run(confidence: float | None) -> list[int]:
        cfg = DecodeConfig(
            gamma=6,
            rule=make_rule("sampling"),
            sampling=Sampling(1.0),
            max_new_tokens=40,
            seed=5,
            gamma_policy=GammaPolicy("constant", start=6, confidence=confidence),
        )
        trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
        assert validate(trace) == []
        for s in trace["steps"]:
            qs = [d["q"] for d in s["draft"]]
            if confidence is not None:  # only the last draft may be unsure
                assert all(q >= confidence for q in qs[:-1])
        return [len(s["draft"]) for s in trace["steps"]]

    free, stopped = run(None), run(0.9)
    assert max(stopped) <= 6
    assert sum(stopped) / len(stopped) < sum(free) / len(free)


def test_no_policy_keeps_the_old_meta(target, draft_lm):
    cfg = DecodeConfig(gamma=3, rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=8)
    trace = Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()
    assert "gamma_policy" not in trace["meta"]
    assert all(len(s["draft"]) <= 3 for s in trace["steps"])


def test_from_options_maps_the_command_line():
    assert GammaPolicy.from_options(4) is None
    assert GammaPolicy.from_options(8, adaptive=True) == GammaPolicy("heuristic", start=4)
    assert GammaPolicy.from_options(2, adaptive=True, confidence=0.4) == GammaPolicy(start=2, confidence=0.4)
    assert GammaPolicy.from_options(6, confidence=0.5) == GammaPolicy("constant", start=6, confidence=0.5)
