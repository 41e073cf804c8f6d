"""specviz: see speculative decoding step by step.

The public API. Only the model layer (`specviz.models.lm`, and for what they alone offer `specviz.run.bench` and
`specviz.train.draft`) imports transformers and only the `specviz.ui` package (one module per page) imports streamlit; everything here works on plain tensors and JSON-able
traces.
"""

from specviz.core.rules import RULES, Rule, Verdict, make_rule, residual
from specviz.core.warp import Sampling, sample, warp
from specviz.trace import FORMAT, VERSION, Trace, TraceError, load, loads, summarize, validate

__all__ = [
    "FORMAT",
    "RULES",
    "VERSION",
    "Rule",
    "Sampling",
    "Trace",
    "TraceError",
    "Verdict",
    "load",
    "loads",
    "make_rule",
    "residual",
    "sample",
    "summarize",
    "validate",
    "warp",
]
