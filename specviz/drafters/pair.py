"""A target and its draft: loading the pair a run decodes with.

Here, not in specviz.models.lm, because a pair may hold a feature head (specviz.drafters.feature),
which builds on the models: the model layer stays below the drafters and imports none.
"""

from __future__ import annotations

from pathlib import Path

from specviz.drafters.feature import FeatureModel, is_head_dir, load_feature_draft
from specviz.models.lm import CausalLM, check_vocab, load_model
from specviz.models.presets import DEFAULT, FEATURE, FEATURE_DIR, NGRAM, STANDALONE, ModelLoadError, resolve_draft

__all__ = ["load_pair"]


def load_pair(
    target: str = DEFAULT, draft: str = DEFAULT, device: str = "auto", dtype: str = "auto", weights: str = "full"
) -> tuple[CausalLM, CausalLM | FeatureModel | None]:
    """Load a target and its draft. The vocabulary check runs here.

    draft: "ngram" (→ None: prompt lookup), "feature" (the embedded feature head), "standalone"
    (the embedded draft model), "default" (DEFAULT_DRAFT for the embedded target, the standalone
    draft model for any other), a directory with head_config.json (a feature head), or any model
    spec load_model takes. weights: the evaluation model's (load_model); with low-bit weights the draft
    computes in bfloat16 too, as the target then does."""
    tgt = load_model(target, device, dtype, role="target", weights=weights)
    if weights != "full" and dtype == "auto":
        dtype = "bfloat16"
    if draft == NGRAM:
        return tgt, None
    draft = resolve_draft(draft, target)
    if draft == FEATURE:
        return tgt, load_feature_draft(FEATURE_DIR, tgt, "specviz feature draft (assets/feature_draft)")
    if is_head_dir(Path(draft).expanduser()):
        return tgt, load_feature_draft(Path(draft).expanduser(), tgt)
    drf = load_model(DEFAULT if draft == STANDALONE else draft, device, dtype, role="draft", tokenizer=tgt.tokenizer)
    check_vocab(tgt, drf)
    if drf.token_map is None and drf.vocab_size < len(tgt.tokenizer):
        raise ModelLoadError(
            f"the draft {drf.name!r} has {drf.vocab_size} output tokens, fewer than the target's tokenizer ({len(tgt.tokenizer)})"
        )
    return tgt, drf
