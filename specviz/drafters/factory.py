"""The one place that turns what was loaded into a drafter for one run.

Imports: specviz.core, specviz.models, specviz.drafters.
"""

from __future__ import annotations

from specviz.core.drafting import Drafter
from specviz.drafters.feature import FeatureDrafter, FeatureModel
from specviz.drafters.model import ModelDrafter
from specviz.drafters.ngram import DEFAULT_LOOKUP_BELOW, LookupFallback, NgramDrafter
from specviz.models.lm import CausalLM

__all__ = ["make_drafter"]


def make_drafter(
    target: CausalLM, draft: CausalLM | FeatureModel | None, lookup_below: float = DEFAULT_LOOKUP_BELOW
) -> Drafter:
    """A fresh drafter for one run: a feature drafter for a feature head, a model drafter for a
    draft LM (either copying from earlier text where its best q is below `lookup_below`; 0: never),
    prompt lookup for None."""
    if draft is None:
        return NgramDrafter(target.vocab_size)
    lookup = LookupFallback(lookup_below) if lookup_below > 0 else None
    if isinstance(draft, FeatureModel):
        return FeatureDrafter(draft, lookup=lookup)
    return ModelDrafter(draft, target.vocab_size, lookup=lookup)
