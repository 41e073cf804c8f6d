"""The model layer: where transformers is imported (lm: CausalLM, load_model; gguf: the embedded GGUF
converted once), the vocabularies (vocab: a draft's reduced vocabulary, tokenizer fingerprints),
the dtype the machine computes fast and exactly in (numerics), bf16 weights prepacked for oneDNN on a CPU
(prepack), llama.cpp on the embedded GGUF as a benchmark-only speed peer (llamacpp), and the embedded
pair's names and presets as plain strings (presets: no torch, so light modules can read them).

Imports: specviz.trace (and torch; transformers in lm and gguf only; llama_cpp in llamacpp only).
"""
