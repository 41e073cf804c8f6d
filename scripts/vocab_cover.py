"""How many of the evaluation model's greedy tokens the draft can never propose (issue 21).

    .venv/bin/python scripts/vocab_cover.py [--prompts 6] [--tokens 128]

The default standalone draft has a reduced vocabulary (FR-Spec style: the training data's most frequent target
tokens). A token outside it has q = 0, so a draft position whose target token lies outside is a certain
rejection. Decodes the held-out prompts (assets/prompts/eval.txt) with the evaluation model alone, greedy, in
the machine's numerics, and prints the share of its tokens outside the draft's vocabulary and the commonest.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from specviz.core.decoder import target_decode
from specviz.core.warp import Sampling
from specviz.drafters.pair import load_pair


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("--tokens", type=int, default=128)
    a = ap.parse_args()
    target, draft = load_pair()
    if draft.token_map is None:
        sys.exit("this draft has the target's whole vocabulary: every token can be proposed")
    subset = set(draft.token_map.target_ids.tolist())
    prompts = [
        p for p in (Path(__file__).resolve().parent.parent / "assets/prompts/eval.txt").read_text().splitlines() if p
    ]
    total, outside, seen_before = 0, Counter(), 0
    for text in prompts[: a.prompts]:
        ids = target.encode(text)
        tokens = list(target_decode(target, ids, Sampling(0), a.tokens))
        total += len(tokens)
        for i, t in enumerate(tokens):
            if t not in subset:
                outside[target.token_text(t)] += 1
                seen_before += t in ids or t in tokens[:i]  # a copy from the context: prompt lookup could draft it
    n = sum(outside.values())
    print(f"draft vocabulary: {len(subset)} of the target's {target.vocab_size} tokens")
    print(f"the evaluation model's greedy tokens outside it: {n} of {total} ({n / total:.1%})")
    print(f"of those, already in the prompt or the answer so far (what prompt lookup drafts from): {seen_before}")
    print("commonest:", ", ".join(f"{t!r} ×{c}" for t, c in outside.most_common(12)))


if __name__ == "__main__":
    main()
