"""Golden traces (issue 24): step records of the tiny pair for a matrix of rules, drafters and shapes,
recorded before a refactor of the decoding path so that the refactor can prove it changed nothing.

    PYTHONPATH=. python -m tests.goldenkit      # (re)write tests/data/golden/*.json — only on purpose

Timing fields are dropped; everything else the decoder records (tokens, p, q, draws, decisions,
n_accepted, the next token and its source, tree nodes) is kept and compared.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from specviz.core.decoder import DecodeConfig, GammaPolicy
from specviz.core.rules import make_rule
from specviz.core.tree import TreeShape
from specviz.core.warp import Sampling
from specviz.drafters.feature import FeatureDrafter
from specviz.drafters.model import ModelDrafter
from specviz.drafters.ngram import NgramDrafter
from specviz.models.lm import CausalLM
from specviz.run.record import Recording

GOLDEN = Path(__file__).parent / "data" / "golden"
PROMPT = [1, 3, 4, 5, 6, 3, 7, 3, 4, 5]
NOISE = 0.15  # a draft close to the target: greedy cases accept some drafts too

# name → (drafter kind, rule, temperature, tree shape, extra config)
CASES: dict[str, tuple[str, str, float, str, dict[str, Any]]] = {
    "chain-sampling": ("model", "sampling", 1.0, "chain", {}),
    "chain-sampling-t0.7-topk": ("model", "sampling", 0.7, "chain", {"top_k": 8}),
    "chain-greedy": ("model", "greedy", 0.0, "chain", {}),
    "chain-threshold": ("model", "threshold", 1.0, "chain", {}),
    "chain-typical": ("model", "typical", 1.0, "chain", {}),
    "chain-adaptive": ("model", "sampling", 1.0, "chain", {"adaptive": True}),
    "chain-confidence": ("model", "greedy", 0.0, "chain", {"confidence": 0.5}),
    "chain-ngram": ("ngram", "greedy", 0.0, "chain", {}),
    "chain-feature": ("feature", "sampling", 1.0, "chain", {}),
    "tree-static-sampling": ("model", "sampling", 1.0, "3,2", {}),
    "tree-static-greedy": ("model", "greedy", 0.0, "2,2,1", {}),
    "tree-threshold": ("model", "threshold", 1.0, "3,1", {}),
    "tree-typical": ("model", "typical", 1.0, "2,2", {}),
    "tree-dynamic-sampling": ("model", "sampling", 1.0, "dynamic:8:8:4", {}),
    "tree-dynamic-greedy": ("model", "greedy", 0.0, "dynamic:8:8:4", {}),
    "tree-ngram": ("ngram", "greedy", 0.0, "3,2", {}),
    "tree-feature": ("feature", "greedy", 0.0, "dynamic:6:6:3", {}),
}


def record(name: str, target: CausalLM, draft_lm: CausalLM, feature: Callable[[], Any]) -> list[dict[str, Any]]:
    """The steps of one case, without timing."""
    kind, rule, temperature, shape, extra = CASES[name]
    drafter = {
        "model": lambda: ModelDrafter(draft_lm, target.vocab_size),
        "ngram": lambda: NgramDrafter(target.vocab_size),
        "feature": lambda: FeatureDrafter(feature()),
    }[kind]()
    policy = GammaPolicy.from_options(4, extra.get("adaptive", False), extra.get("confidence"))
    cfg = DecodeConfig(
        gamma=4, rule=make_rule(rule), sampling=Sampling(temperature, top_k=extra.get("top_k", 0)),
        max_new_tokens=28, seed=11, top_k_log=3, tree=TreeShape.parse(shape), gamma_policy=policy,
    )  # fmt: skip
    trace = Recording(target, drafter, "", cfg, prompt_ids=PROMPT).run()
    return [{k: v for k, v in step.items() if k != "timing_ms"} for step in trace["steps"]]


def canonical(steps: list[dict[str, Any]]) -> str:
    return json.dumps(steps, sort_keys=True, indent=1)


def main() -> None:
    import torch

    from tests.conftest import make_model, make_tokenizer, perturbed
    from tests.drafters.test_feature import tiny_draft

    torch.set_num_threads(1)
    tok = make_tokenizer()
    target = CausalLM(make_model(0, len(tok)), tok, "tiny-target", torch.device("cpu"))
    draft_lm = CausalLM(perturbed(target.model, 1, NOISE), tok, "tiny-draft", torch.device("cpu"))
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        steps = record(name, target, draft_lm, lambda: tiny_draft(target))
        (GOLDEN / f"{name}.json.gz").write_bytes(gzip.compress((canonical(steps) + "\n").encode(), mtime=0))
        print(name, len(steps), "steps")


if __name__ == "__main__":
    main()
