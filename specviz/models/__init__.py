"""The model layer: the only place transformers is imported (lm: CausalLM, load_model, the embedded GGUF),
the dtype the machine computes fast and exactly in (numerics), bf16 weights prepacked for oneDNN on a CPU
(prepack), and the embedded pair's names and presets as plain strings (presets: no torch, so light
modules can read them).

Imports: specviz.trace (and torch; transformers in lm only).
"""
