"""Where a speculative step's time goes, phase by phase, on the embedded pair (issue 20, item 3).

    .venv/bin/python scripts/phases.py [--tree chain|dynamic:4:8:2] [--gamma 4] [--weights full|int8|int4]
        [--draft-pass lean|transformers|both] [--prompts 3] [--json-out FILE]

Runs specviz's own decoder (greedy, 128 new tokens, gamma 4 unless asked, the eval prompts, full logging) with
timers wrapped around each phase, without changing the decoder:
- draft: drafter.propose (the draft model's passes, its sampling, its q);
- verify pass: the evaluation model's forward over the new positions;
- rule: warp, the rule's verify and next_distribution, sampling the evaluation model's token;
- KV: rolling the evaluation model's cache back to the accepted prefix;
- logging: building the step record (token texts, top-k lists, the untempered lists);
- other: the rest of the step (the loop's own Python), by difference from the step's wall time.
Prints ms per step and each phase as a share of the verify pass, and the draft's ms per drafted position.
--draft-pass both runs each prompt with the draft's own pass (models.lean) and with transformers' forward
in turns: the like-for-like ratio of the two. Run alone on the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from specviz.core import decoder, rules
from specviz.core.decoder import DecodeConfig
from specviz.core.rules import make_rule
from specviz.core.tree import TreeShape
from specviz.core.warp import Sampling
from specviz.drafters.factory import make_drafter
from specviz.drafters.pair import load_pair

SPENT: dict[str, float] = defaultdict(float)
DEPTH = 0


def timed(phase: str, fn):
    """fn, its time added to `phase`; only the outermost timed call counts (_raw calls _top, say)."""

    def wrapper(*a, **kw):
        global DEPTH
        DEPTH += 1
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            DEPTH -= 1
            if DEPTH == 0:
                SPENT[phase] += time.perf_counter() - t0

    return wrapper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", default="chain")
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--gamma", type=int, default=4)
    ap.add_argument("--weights", default="full", choices=["full", "int8", "int4"], help="the evaluation model's")
    ap.add_argument("--draft-pass", default="lean", choices=["lean", "transformers", "both"])
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()
    target, draft = load_pair(weights=a.weights)
    passes = {"lean": draft, "transformers": dataclasses.replace(draft, lean=None)}
    variants = list(passes) if a.draft_pass == "both" else [a.draft_pass]
    prompts = [
        p
        for p in (Path(__file__).resolve().parent.parent / "assets/prompts/eval.txt").read_text().splitlines()
        if p.strip()
    ]
    # wrap the phases (module attributes the decoder looks up at call time)
    # the evaluation model's own calls only (the draft model is a CausalLM too: its passes are drafting)
    target.forward = timed("verify pass", target.forward)
    target.forward_tree = timed("verify pass", target.forward_tree)
    target.rollback = timed("KV rollback", target.rollback)
    target.keep = timed("KV rollback", target.keep)  # a tree keeps the accepted path's rows
    decoder.verify_tree = timed("rule", decoder.verify_tree)
    decoder.warp = timed("rule", decoder.warp)
    decoder.sample = timed("rule", decoder.sample)
    rules.Rule.verify = timed("rule", rules.Rule.verify)
    rules.Rule.next_distribution = timed("rule", rules.Rule.next_distribution)
    for name in ("_top", "_tok", "_raw"):
        setattr(decoder, name, timed("logging", getattr(decoder, name)))
    cfg = DecodeConfig(a.gamma, make_rule("greedy"), Sampling(0.0), max_new_tokens=128, tree=TreeShape.parse(a.tree))
    per_step: dict[str, dict[str, list[float]]] = {v: defaultdict(list) for v in variants}
    for text in prompts[: a.prompts + 1]:
        ids = target.encode(text)
        for variant in variants:
            drafter = make_drafter(target, passes[variant])
            drafter.propose = timed("draft", drafter.propose)
            if hasattr(drafter, "propose_tree"):
                drafter.propose_tree = timed("draft", drafter.propose_tree)
            SPENT.clear()
            t0 = time.perf_counter()
            steps = list(decoder.speculative_decode(target, drafter, ids, cfg))
            wall = time.perf_counter() - t0
            if text == prompts[0]:
                continue  # the first prompt warms up
            n = len(steps)
            drafted = sum(len(s["draft"]) for s in steps)
            row = per_step[variant]
            # the verify pass of the first step also reads the prompt (prefill, before the loop): spent
            # is summed over the whole run, so the prefill is part of "verify pass" here, once per prompt
            for phase, sp in SPENT.items():
                row[phase].append(sp * 1e3 / n)
            row["other"].append((wall - sum(SPENT.values())) * 1e3 / n)
            row["step"].append(wall * 1e3 / n)
            row["draft per position"].append(SPENT["draft"] * 1e3 / max(drafted, 1))
            row["tokens per step"].append(sum(s["n_accepted"] + 1 for s in steps) / n)
    out = {}
    for variant in variants:
        med = {k: statistics.median(v) for k, v in per_step[variant].items()}
        verify = med["verify pass"]
        print(f"draft pass: {variant}\n{'phase':<14} {'ms/step':>8} {'of a verify pass':>17}")
        for k in ("draft", "verify pass", "rule", "KV rollback", "logging", "other", "step"):
            print(f"{k:<14} {med.get(k, 0.0):8.2f} {med.get(k, 0.0) / verify:16.0%}")
        book = sum(med.get(k, 0.0) for k in ("rule", "KV rollback", "logging", "other"))
        print(f"bookkeeping (rule + KV + logging + other): {book:.2f} ms = {book / verify:.0%} of a verify pass")
        print(
            f"draft: {med['draft per position']:.2f} ms per drafted position; {med['tokens per step']:.2f} tokens per step\n"
        )
        out[variant] = {"ms_per_step": med, "bookkeeping_share": book / verify}
    if a.json_out:
        a.json_out.write_text(json.dumps({"tree": a.tree, "gamma": a.gamma, **out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
