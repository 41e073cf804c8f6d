"""How often the first draft is the evaluation model's greedy token: the draft model alone, and with the
prompt-lookup fallback (issue 21).

    .venv/bin/python scripts/lookup_agreement.py [--answers 300] [--below 0.5 0.7 0.9 1.0] [--split train]
        [--draft DIR] [--json-out F]

Teacher-forced over held-out greedy answers in data/distill (their prompts were never trained on): at each
answer position, the draft model's top token from the text so far, and what `LookupFallback` would copy
there instead (where the model's own best q is below `below` and the last 2-3 tokens occurred earlier).
A greedy answer's tokens are the evaluation model's argmax, so agreement here is the greedy acceptance of a
first draft. Prints the agreement alone, with each bar, and how often either source was right (a ceiling
for choosing between the two). `--split train` counts on answers the draft was trained on instead: the gap
between the two says how far the draft generalises. `--draft DIR` scores another draft (a folder `python -m
specviz.train train --out` wrote) on the same answers, so two drafts compare position for position.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from specviz.drafters.ngram import LookupFallback
from specviz.drafters.pair import load_pair
from specviz.train.data import read_shards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--answers", type=int, default=300)
    ap.add_argument("--below", type=float, nargs="+", default=[0.5, 0.7, 0.9, 1.0])
    ap.add_argument("--split", choices=["held-out", "train"], default="held-out")
    ap.add_argument("--draft", default="default", help="the draft to score: 'default' or a draft model's folder")
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()
    target, draft = load_pair(draft=a.draft)
    if draft is None or not hasattr(draft, "new_cache"):
        sys.exit(f"--draft {a.draft}: not a draft model (prompt lookup and feature heads are scored elsewhere)")
    tmap = draft.token_map
    rows = [r for r in read_shards("answers-*.jsonl.gz") if r["split"] == a.split and r["mode"] == "greedy"]
    rows = rows[: a.answers]
    if not rows:
        sys.exit(f"no {a.split} greedy answers in data/distill: see data/distill/README.md")
    fallback = LookupFallback(1.0)
    # per position: (model right, model's own best q, the copy (token) or None)
    seen: list[tuple[bool, float, int | None]] = []
    right_copy: list[bool] = []
    t0 = time.time()
    for r in rows:
        prompt, answer = target.encode(r["prompt"]), r["answer_ids"]
        ids = prompt + answer
        with torch.inference_mode():
            logits = draft.forward(draft.new_cache(), tmap.to_draft(ids) if tmap else ids, last=len(answer) + 1)
        q = torch.softmax(logits[: len(answer)].float()[:, : len(tmap.target_ids) if tmap else None], -1)
        conf, best = q.max(-1)
        top = (tmap.target_ids[best] if tmap else best).tolist()
        for j, token in enumerate(answer):
            found = fallback.find(ids[: len(prompt) + j], target.vocab_size)
            seen.append((top[j] == token, float(conf[j]), None if found is None else found[0]))
            right_copy.append(found is not None and found[0] == token)
    n = len(seen)
    alone = sum(s[0] for s in seen) / n

    def agreement(below: float) -> float:
        return (
            sum(
                rc if cp is not None and conf < below else ok
                for (ok, conf, cp), rc in zip(seen, right_copy, strict=True)
            )
            / n
        )

    with_bar = {b: agreement(b) for b in a.below}
    either = sum(ok or rc for (ok, _, _), rc in zip(seen, right_copy, strict=True)) / n
    copies = sum(cp is not None for _, _, cp in seen) / n
    print(f"{len(rows)} {a.split} greedy answers, {n} positions ({time.time() - t0:.0f} s)")
    print(f"first-draft agreement, the draft model alone: {alone:.1%}")
    for b, v in with_bar.items():
        print(f"  with the fallback below {b}: {v:.1%}")
    print(f"a copy was possible at {copies:.1%} of positions; either source right: {either:.1%}")
    if a.json_out:
        out = {
            "answers": len(rows),
            "split": a.split,
            "draft": a.draft,
            "positions": n,
            "alone": alone,
            "with_fallback": with_bar,
            "copy_possible": copies,
            "either": either,
        }
        a.json_out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
