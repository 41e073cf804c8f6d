"""Drafter kinds behind core.drafting's protocols: a small causal LM (model), prompt lookup (ngram), the
EAGLE-style feature head that reads the evaluation model's hidden states (feature); the factory that makes
one for a run (factory) and the loading of a (target, draft) pair (pair).

Imports: specviz.core, specviz.models, specviz.trace.
"""
