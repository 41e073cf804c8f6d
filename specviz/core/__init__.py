"""The method itself, pure torch: how logits become q and p (warp), the acceptance rules (rules), draft
trees and their verification (tree), the decoder that yields one step record at a time (decoder), what
it asks of a drafter and of the evaluation model (drafting, target), and the cost model: the textbook's
formulas and what a trace measures (theory).

Imports: torch and specviz.trace only — never transformers, the models, the figures or the UI.
"""
