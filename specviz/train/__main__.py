"""python -m specviz.train STAGE: one entry for every training step.

    data:  prompts, answers, status, shards   (specviz.train.data: the distillation data)
    draft: gen, train                         (specviz.train.draft: the standalone draft model)
    head:  feature, card                      (specviz.train.feature, through specviz.train.draft)

`python -m specviz.train STAGE --help` lists a stage's options.
"""

from __future__ import annotations

import argparse

from specviz.train import data, draft


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m specviz.train", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="stage", required=True)
    data.add_parsers(sub)
    draft.add_parsers(sub)
    args = ap.parse_args(argv)
    (data.run if args.stage in data.STAGES else draft.run)(args)


if __name__ == "__main__":
    main()
