"""Write the fixtures the JavaScript tests hold specviz/assets/live/{warp,rules}.js and decode.js's prompt
lookup and confidence stop to: what the Python implementations (specviz.core.warp, specviz.core.rules,
specviz.drafters.ngram LookupFallback, specviz.drafters.model ModelDrafter.propose) give on the same inputs.

    PYTHONPATH=. .venv/bin/python tests/js/make_fixtures.py     # rewrites tests/js/fixtures/*.json

tests/assets/test_live_js.py regenerates them in a temporary folder and compares them with the committed
ones, so a change to the Python side fails there until the fixtures (and the JavaScript) follow.
Inputs are float32 numbers written exactly, so both sides start from the same bits. Vocabularies stay at
16 entries or fewer where top-p may split a tie: torch.sort keeps tied entries in id order only up to 16.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specviz.core.decoder import DEFAULT_CONFIDENCE, GammaPolicy
from specviz.core.rules import KINDS, make_rule
from specviz.core.warp import Sampling, sample, warp
from specviz.drafters.model import ModelDrafter
from specviz.drafters.ngram import DEFAULT_LOOKUP_BELOW, LookupFallback

FIXTURES = Path(__file__).parent / "fixtures"

# settings every hand-made logits row is warped with: (temperature, top_k, top_p)
SETTINGS = [
    (1.0, 0, 1.0), (0.0, 0, 1.0), (0.5, 0, 1.0), (2.0, 0, 1.0), (1e-3, 0, 1.0), (1e-40, 0, 1.0), (3e-39, 0, 1.0),
    (1e-30, 0, 1.0), (1.0, 1, 1.0), (1.0, 2, 1.0), (1.0, 3, 1.0), (1.0, 100, 1.0), (1.0, 0, 0.5), (1.0, 0, 0.9),
    (1.0, 0, 0.01), (0.7, 2, 0.8), (0.0, 2, 0.5), (1.5, 4, 0.95),
]  # fmt: skip


def f32(xs: list[float] | torch.Tensor) -> list[float]:
    """Float32 numbers, each written in the fewest digits that read back as the same float32 (JavaScript's
    Float32Array.from does): both languages start from the same bits, and the files stay small."""
    values = xs.float() if isinstance(xs, torch.Tensor) else torch.tensor(xs, dtype=torch.float32)
    return [float(str(np.float32(v))) for v in values.tolist()]


def _logits_rows() -> list[list[float]]:
    gen = torch.Generator().manual_seed(23)
    rows = [
        [1.0, 3.0, 2.0, 3.0, -1.0, 0.5],  # two tied maxima: the first wins under greedy
        [2.0, 2.0, 1.0, 0.0],  # a tie that top-p splits
        [0.0, 0.0, 0.0, 0.0, 0.0],  # all tied
        [5.0],  # a single token
        [-1e4, 0.0, 1e4, 9999.0],  # far apart
        [0.1, 2.0, 1.0, 3.0, -1.0],
        f32([math.log(v) for v in (0.25, 0.5, 0.15, 0.1)]),  # by probability: 0.5, 0.25, 0.15, 0.1
    ]
    for n in (5, 9, 16, 50):
        rows.append(f32(torch.randn(n, generator=gen) * 2))
    return rows


def warp_cases() -> list[dict[str, Any]]:
    cases = []
    for logits in _logits_rows():
        for t, k, p in SETTINGS:
            probs = warp(torch.tensor(logits), Sampling(t, k, p))
            cases.append({"logits": logits, "temperature": t, "top_k": k, "top_p": p, "probs": f32(probs)})
    # a larger vocabulary: top-k's selection and top-p's sorted prefix (down to a near-flat nucleus of 0.999)
    big = f32(torch.randn(2000, generator=torch.Generator().manual_seed(5)) * 3)
    for t, k, p in ((1.0, 50, 1.0), (1.0, 0, 0.9), (0.5, 0, 0.5), (1.0, 300, 0.95), (2.0, 0, 0.999)):
        probs = warp(torch.tensor(big), Sampling(t, k, p))
        cases.append({"logits": big, "temperature": t, "top_k": k, "top_p": p, "probs": f32(probs)})
    # top-p boundaries on a known distribution: 0.5 alone, + 0.25, + 0.15, everything
    quarter = f32([math.log(v) for v in (0.25, 0.5, 0.15, 0.1)])
    for p in (0.45, 0.6, 0.74, 0.8, 0.95, 1e-6):
        probs = warp(torch.tensor(quarter), Sampling(1.0, 0, p))
        cases.append({"logits": quarter, "temperature": 1.0, "top_k": 0, "top_p": p, "probs": f32(probs)})
    return cases


def sample_cases() -> list[dict[str, Any]]:
    dists = [
        f32([0.1, 0.0, 0.6, 0.3]),
        f32([0.7, 0.7 * 0.0, 4.2, 2.1]),  # unnormalised weights
        f32([0.5, 0.5, 0.0, 0.0]),  # a zero tail the top end must not land on
        f32([0.0, 0.0, 1.0]),
        f32([1.0]),
    ]
    us = [0.0, 0.0999, 0.1001, 0.5, 0.6999, 0.7001, 0.9999999, 1 - 2**-53]
    return [{"probs": d, "u": u, "index": sample(torch.tensor(d), u)} for d in dists for u in us]


def _rows(gen: torch.Generator, n: int, v: int, sampling: Sampling) -> torch.Tensor:
    return warp(torch.randn(n, v, generator=gen) * 1.5, sampling)


def rule_cases() -> list[dict[str, Any]]:
    """Rule.verify and Rule.next_distribution on p [gamma + 1, V], q [gamma, V], drafts and r."""
    gen = torch.Generator().manual_seed(7)
    rules = [
        make_rule("sampling"), make_rule("greedy"), make_rule("threshold"), make_rule("threshold", tau=0.9),
        make_rule("threshold", tau=0.0), make_rule("threshold", tau=1.5), make_rule("typical"), make_rule("typical", epsilon=0.3, delta=0.09),
    ]  # fmt: skip
    inputs: list[tuple[torch.Tensor, torch.Tensor, list[int], torch.Tensor]] = []
    for sampling in (Sampling(1.0), Sampling(0.7, top_k=4), Sampling(1.0, top_p=0.8), Sampling(0.0)):
        for gamma in (1, 3, 5):
            p, q = _rows(gen, gamma + 1, 12, sampling), _rows(gen, gamma, 12, sampling)
            draft = [sample(q[j], float(torch.rand(1, generator=gen))) for j in range(gamma)]
            inputs.append((p, q, draft, torch.rand(gamma, generator=gen)))
    # hand-made: p == q (an empty residual: a rejection with tau > 1 falls back to p); a q(x) of 0 (a
    # hand-built q); p(x) = 0; a tied argmax
    same = _rows(gen, 3, 6, Sampling(1.0))
    inputs.append((same, same[:2].clone(), [1, 4], torch.tensor([0.5, 0.99])))
    p = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.25, 0.25, 0.5], [0.1, 0.2, 0.3, 0.4]])
    q = torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.5, 0.0, 0.0, 0.5]])
    for draft in ([0, 3], [1, 0], [2, 1], [1, 3]):
        inputs.append((p, q, draft, torch.tensor([0.25, 0.75])))
    cases = []
    for rule in rules:
        for p, q, draft, r in inputs:
            v = rule.verify(p, q, torch.tensor(draft), r)
            n = v.n_accepted
            probs, source = rule.next_distribution(p[n], q[n] if n < len(draft) else None)
            numbers = {
                k: getattr(v, k).tolist() for k in ("accept_prob", "ratio", "cutoff") if getattr(v, k) is not None
            }
            cases.append(
                {
                    "rule": rule.name, "params": dict(rule.params), "p": [f32(row) for row in p], "q": [f32(row) for row in q], "draft": draft,
                    "r": r.tolist(), "accepted": v.accepted.tolist(), "n_accepted": n, "numbers": numbers,
                    "next": {"probs": f32(probs), "source": source},
                }
            )  # fmt: skip
    return cases


def kinds() -> dict[str, Any]:
    return {
        name: {
            "defaults": dict(k.defaults),
            "lossless": k.lossless,
            "uses_random": k.uses_random,
            "correction": k.correction,
            "recursive": k.recursive,
        }
        for name, k in KINDS.items()
    }


def lookup_cases() -> dict[str, Any]:
    """LookupFallback.find on short random texts over a few ids (so n-grams repeat), some of them at or
    past the vocabulary's end (a follower the target cannot score is passed over)."""
    gen = torch.Generator().manual_seed(31)
    cases = []
    for k in range(240):
        alphabet = 2 + k % 6
        ids = torch.randint(0, alphabet, (1 + k % 23,), generator=gen).tolist()
        vocab = alphabet - 1 if k % 3 == 0 else alphabet
        min_ngram = 1 if k % 5 == 0 else 2
        found = LookupFallback(min_ngram=min_ngram).find(ids, vocab)
        cases.append({"ids": ids, "vocab": vocab, "min_ngram": min_ngram, "found": list(found) if found else None})
    fb = LookupFallback()
    return {
        "defaults": {"below": DEFAULT_LOOKUP_BELOW, "min_ngram": fb.min_ngram, "max_ngram": fb.max_ngram},
        "cases": cases,
    }


class _RowsLM:
    """A stand-in draft LM for ModelDrafter: the logits after the prompt and k drafts are rows[k],
    whatever the ids (the JavaScript test's fake model gives the same rows)."""

    name = "rows"
    token_map = None

    def __init__(self, rows: list[list[float]], n_prompt: int) -> None:
        self.rows, self.n_prompt = rows, n_prompt

    def new_cache(self) -> list[int]:
        return [0]  # the positions it holds

    def rollback(self, cache: list[int], length: int) -> None:
        cache[0] = length

    def forward(self, cache: list[int], ids: list[int], last: int = 1) -> torch.Tensor:
        cache[0] += len(ids)
        return torch.tensor([self.rows[cache[0] - self.n_prompt]])


def confidence_cases() -> dict[str, Any]:
    """ModelDrafter.propose with the confidence stop (and the prompt-lookup fallback) over hand-made draft
    logits: the drafts it makes, which it copied, and how many uniforms it drew (one per draft made). The
    uniforms are the seed's first ones, so the JavaScript drafter can be handed the same numbers."""
    gen = torch.Generator().manual_seed(41)
    v, gamma = 12, 6
    samplings = [Sampling(0.0), Sampling(1.0), Sampling(0.7, top_k=4), Sampling(1.0, top_p=0.8)]
    cases = []
    for k in range(160):
        # peaked rows of varied height: the best own q runs from about 1/12 to near 1
        rows = torch.randn(gamma, v, generator=gen) * (1 + 6 * torch.rand(gamma, 1, generator=gen))
        rows = [f32(row) for row in rows]
        prompt = torch.randint(0, 5, (4 + k % 5,), generator=gen).tolist()  # few ids: n-grams repeat
        sampling = samplings[k % len(samplings)]
        confidence = [None, 0.3, DEFAULT_CONFIDENCE, 0.6, 0.9, 1.0][k % 6]
        below = [None, DEFAULT_LOOKUP_BELOW, 1.0][k // 6 % 3]
        seed = 100 + k
        drafter = ModelDrafter(_RowsLM(rows, len(prompt)), v, lookup=None if below is None else LookupFallback(below))
        g = torch.Generator().manual_seed(seed)
        prop = drafter.propose(prompt, gamma, sampling, g, confidence)
        uniforms = torch.rand(gamma + 1, generator=torch.Generator().manual_seed(seed)).tolist()
        after = float(torch.rand(1, generator=g))  # the next uniform tells how many propose drew
        draws = uniforms.index(after)
        cases.append(
            {
                "rows": rows, "prompt": prompt, "gamma": gamma, "temperature": sampling.temperature,
                "top_k": sampling.top_k, "top_p": sampling.top_p, "confidence": confidence, "lookup_below": below,
                "uniforms": uniforms[:gamma], "token_ids": prop.token_ids, "copied": list(prop.copied), "draws": draws,
            }
        )  # fmt: skip
    policy = GammaPolicy.from_options(4, confidence=DEFAULT_CONFIDENCE)
    assert policy is not None and GammaPolicy.from_options(4, confidence=0.0) is None
    return {"default": DEFAULT_CONFIDENCE, "gamma_policy": policy.meta(4), "cases": cases}


def fixtures() -> dict[str, Any]:
    """{file name: content}: what the JavaScript tests read."""
    return {
        "warp.json": {"warp": warp_cases(), "sample": sample_cases()},
        "rules.json": {"kinds": kinds(), "cases": rule_cases()},
        "lookup.json": lookup_cases(),
        "confidence.json": confidence_cases(),
    }


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in fixtures().items():
        path = folder / name
        path.write_text(json.dumps(content, separators=(",", ":")) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for path in write(FIXTURES):
        print(f"wrote {path} ({path.stat().st_size} bytes)")
