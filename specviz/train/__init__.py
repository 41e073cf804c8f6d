"""Training the drafts: the distillation data (data: Magpie prompts, batched answers, shards), the standalone
draft (draft), the feature head (feature) and what they share (common). One entry: `python -m
specviz.train STAGE` (__main__).

Imports: specviz.core, specviz.models, specviz.drafters, specviz.trace (and transformers in draft).
"""
