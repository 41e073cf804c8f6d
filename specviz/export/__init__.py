"""The embedded pair for a browser: the models as ONNX files with an explicit KV cache (onnxgraph: the
I/O contract the page's JS adapter reads), their weights stored in fewer bits and computed in float32
(quantize), the static folder `python -m specviz export-live` writes with its manifest and its cache of
exports (bundle), and a Python reference decoder over the same files with onnxruntime (ortref), which a
browser's greedy output is checked against.

Imports: specviz.models, specviz.trace (and torch, onnx, onnxruntime; ortref needs neither torch nor
transformers).
"""
