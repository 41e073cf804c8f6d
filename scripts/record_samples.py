"""Record the app's built-in sample traces into assets/traces/ (re-runnable; overwrites them).

    .venv/bin/python scripts/record_samples.py                 # the standalone draft (ngram while it is missing);
                                                               # feature-greedy always uses the feature draft
    .venv/bin/python scripts/record_samples.py --only greedy   # one sample
    .venv/bin/python scripts/record_samples.py --draft ngram   # prompt lookup for every sample
    .venv/bin/python scripts/record_samples.py --threads 1     # on a CPU busy with other jobs

Each sample is a gzipped JSON trace, validated and checked to be under 1 MB before it is written.
The "prompt-lookup" sample always uses the n-gram drafter; the others use --draft. While the
default draft model (assets/draft/) does not exist yet, --draft default falls back to prompt
lookup and marks the samples as placeholders in their meta.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from specviz.core.decoder import DecodeConfig  # noqa: E402
from specviz.core.rules import make_rule  # noqa: E402
from specviz.core.tree import TreeShape  # noqa: E402
from specviz.core.warp import Sampling  # noqa: E402
from specviz.drafters.factory import make_drafter  # noqa: E402
from specviz.drafters.feature import FeatureModel  # noqa: E402
from specviz.drafters.pair import load_pair  # noqa: E402
from specviz.models.lm import CausalLM  # noqa: E402
from specviz.models.presets import DRAFT_DIR, ModelLoadError  # noqa: E402
from specviz.run.record import Recording  # noqa: E402
from specviz.trace import Trace, dump, validate  # noqa: E402

MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class Sample:
    name: str
    title: str
    description: str
    prompt: str
    rule: str = "sampling"
    params: dict[str, float] = field(default_factory=dict)
    temperature: float = 0.7
    top_p: float = 1.0
    gamma: int = 4
    max_new_tokens: int = 64
    seed: int = 0
    chat: bool = True
    ngram: bool = False  # always prompt lookup, whatever --draft says
    draft: str | None = None  # this draft (e.g. "feature"), whatever --draft says
    min_steps: int = 0  # retry with the next seed until the trace has this many steps
    stop_after: int | None = None  # end the run (stop_reason "stopped") after this many steps
    log_top_k: int = 10
    tree: str = "chain"  # the --tree shape


SAMPLES = [
    Sample(
        "greedy",
        "Greedy (T = 0)",
        "Temperature 0 and the greedy rule: a draft is accepted exactly when it is the evaluation model's argmax.",
        "Write a short poem about the sea.",
        rule="greedy",
        temperature=0.0,
    ),
    Sample(
        "feature-greedy",
        "Greedy with the feature draft",
        "The greedy sample's prompt and settings with the feature draft, a one-layer head that reads the evaluation "
        "model's last hidden state: the same output in fewer steps (compare it with the greedy sample).",
        "Write a short poem about the sea.",
        rule="greedy",
        temperature=0.0,
        draft="feature",
    ),
    Sample(
        "tree-greedy",
        "Greedy with a draft tree",
        "The greedy sample's prompt and settings with a draft tree (2·2·1·1: two candidates at the first two depths): "
        "every node is scored in one pass of the evaluation model; the same output as the greedy sample in fewer "
        "steps.",
        "Write a short poem about the sea.",
        rule="greedy",
        temperature=0.0,
        tree="2,2,1,1",
    ),
    Sample(
        "tree-sampling",
        "Speculative sampling on a draft tree, T = 0.7",
        "Three candidates at the first depth, drawn from q without replacement: after a rejection the next sibling "
        "is tested against the residual norm(max(0, p − q)), and the output still follows the evaluation model.",
        "Explain why the sky is blue in two sentences.",
        tree="3,2,1",
    ),
    Sample(
        "sampling-t0.7",
        "Speculative sampling, T = 0.7",
        "The lossless rule: accept when r < min(1, p/q); after a rejection the evaluation model draws from "
        "norm(max(0, p − q)).",
        "Explain why the sky is blue in two sentences.",
    ),
    Sample(
        "threshold",
        "Lossy threshold rule (τ = 0.3)",
        "Accept when p/q ≥ τ: faster, but the output no longer follows the evaluation model's distribution.",
        "Give three tips for learning to cook.",
        rule="threshold",
        params={"tau": 0.3},
    ),
    Sample(
        "prompt-lookup",
        "Prompt lookup on a copying prompt",
        "No draft model: the drafter copies what followed the latest earlier occurrence of the last tokens "
        "(n-gram lookup), so q is one-hot and text that repeats the prompt is accepted in long runs.",
        "Copy the following paragraph exactly, word for word:\n"
        "The lighthouse stood at the edge of the cliff for two hundred years. Every night its keeper climbed "
        "the one hundred and twelve steps, lit the great lamp, and watched the ships pass safely through the "
        "narrow channel between the rocks. In the morning he wrote the names of the ships in a thick book.",
        rule="greedy",
        temperature=0.0,
        max_new_tokens=96,
        ngram=True,
    ),
    Sample(
        "long",
        "A long run (300+ steps)",
        "A long sampling run for the statistics page and for scrolling through many steps.",
        "Once upon a time, in a small village by the sea, there lived an old lighthouse keeper who",
        temperature=0.8,
        top_p=0.95,
        max_new_tokens=1000,
        chat=False,
        min_steps=300,
        stop_after=320,
        log_top_k=8,
    ),
]


def record(target: CausalLM, draft: CausalLM | FeatureModel | None, sample: Sample, placeholder: bool) -> Trace:
    seed = sample.seed
    while True:
        cfg = DecodeConfig(
            gamma=sample.gamma,
            rule=make_rule(sample.rule, **sample.params),
            sampling=Sampling(sample.temperature, 0, sample.top_p),
            max_new_tokens=sample.max_new_tokens,
            seed=seed,
            top_k_log=sample.log_top_k,
            tree=TreeShape.parse(sample.tree),
        )
        drafter = make_drafter(target, None if sample.ngram else draft)
        info = {"name": sample.name, "title": sample.title, "description": sample.description}
        if placeholder and not sample.ngram:
            info["placeholder"] = "recorded with prompt lookup while the default draft model was missing"
        rec = Recording(target, drafter, sample.prompt, cfg, chat=sample.chat, extra_meta={"sample": info})
        if sample.stop_after is not None:
            limit = sample.stop_after
            rec.should_stop = lambda rec=rec, limit=limit: len(rec.trace["steps"]) >= limit
        for step in rec:
            if step["index"] % 50 == 49:
                print(f"  {sample.name}: step {step['index'] + 1}", flush=True)
        trace = rec.trace
        if len(trace["steps"]) >= sample.min_steps or seed >= sample.seed + 4:
            return trace
        print(f"  {sample.name}: only {len(trace['steps'])} steps with seed {seed}; trying seed {seed + 1}", flush=True)
        seed += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="default")
    ap.add_argument(
        "--draft",
        default="standalone",
        help="'standalone' (assets/draft; ngram while missing), 'feature', 'ngram', a path",
    )
    ap.add_argument("--only", nargs="*", choices=[s.name for s in SAMPLES], help="record just these samples")
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "traces")
    ap.add_argument(
        "--threads", type=int, help="torch CPU threads; 1 is much faster on a CPU shared with other heavy jobs"
    )
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    draft_spec, placeholder = args.draft, False
    if draft_spec == "standalone" and not (DRAFT_DIR / "config.json").is_file():
        print(f"note: {DRAFT_DIR} does not exist yet; recording placeholder samples with prompt lookup")
        draft_spec, placeholder = "ngram", True
    try:
        target, draft = load_pair(args.target, draft_spec, device="cpu")
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for sample in SAMPLES:
        if args.only and sample.name not in args.only:
            continue
        t0 = time.perf_counter()
        own = draft if sample.draft is None else load_pair(args.target, sample.draft, device="cpu")[1]
        trace = record(target, own, sample, placeholder)
        problems = validate(trace)
        if problems:
            print(f"error: {sample.name} does not validate: {problems[0]}", file=sys.stderr)
            return 1
        path = args.out / f"{sample.name}.json.gz"
        dump(trace, path)
        size = path.stat().st_size
        if size > MAX_BYTES:
            print(f"error: {path} is {size} bytes, over {MAX_BYTES}; lower log_top_k or max_new_tokens")
            return 1
        out = trace["output"]
        print(
            f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {len(trace['steps'])} steps, "
            f"{len(out['token_ids'])} tokens ({out['stop_reason']}), {size / 1024:.0f} KiB, "
            f"{time.perf_counter() - t0:.0f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
