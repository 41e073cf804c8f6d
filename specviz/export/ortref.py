"""The Python reference decoder over an exported folder: the same ONNX files and tokenizer files the
browser loads, run by onnxruntime on the CPU.

What a browser test compares against: `greedy(folder, prompt, n)` is the target alone, decoding
greedily with its KV cache, exactly the I/O contract of specviz.export.onnxgraph. Its prompt goes
through the folder's own tokenizer.json and the chat template in tokenizer_config.json, rendered as
transformers renders it (a sandboxed jinja2, trim_blocks and lstrip_blocks) and encoded without
special tokens added, which is what a JS tokenizer does with the same two files.

Two runtimes (wasm in a browser, MLAS here) round differently, so a browser's greedy output may part
from this one only at a near-tie: `greedy_margins` gives, at every emitted position, the gap between
the two best logits (= the gap in log-probability, in nats), and a parting is acceptable only where
that gap is within the runtime's rounding (specviz.trace.parting's idea, measured in nats).

Imports: numpy, onnxruntime, tokenizers, jinja2; nothing from torch or transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Emitted", "OrtLM", "encode", "greedy", "greedy_margins", "manifest"]


def manifest(folder: Path) -> dict:
    """The folder's manifest.json (specviz.export.bundle writes it)."""
    return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))


class OrtLM:
    """One exported model in an onnxruntime session, with its cache as a list of numpy arrays
    [k0, v0, k1, v1, ...], each [1, H, P, D] float32."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # 0: onnxruntime's own choice (one per core)
        opts.log_severity_level = 3  # the quantized graphs' harmless "unused initializer" warnings
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        past = [i for i in self.session.get_inputs() if i.name.startswith("past_key_values.")]
        self.layers = len(past) // 2
        _, self.kv_heads, _, self.head_dim = past[0].shape
        self._outputs = [o.name for o in self.session.get_outputs()]

    def empty_cache(self) -> list[np.ndarray]:
        return [np.zeros((1, self.kv_heads, 0, self.head_dim), np.float32) for _ in range(2 * self.layers)]

    def forward(self, ids: list[int], cache: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Append ids after the cached positions: (logits [len(ids), V] float32, the new cache)."""
        past = cache[0].shape[2]
        feed = {
            "input_ids": np.array([ids], np.int64),
            "attention_mask": np.ones((1, past + len(ids)), np.int64),
            "position_ids": np.arange(past, past + len(ids), dtype=np.int64)[None],
        }
        for i in range(self.layers):
            feed[f"past_key_values.{i}.key"], feed[f"past_key_values.{i}.value"] = cache[2 * i], cache[2 * i + 1]
        logits, *present = self.session.run(self._outputs, feed)
        return logits[0], present

    @staticmethod
    def crop(cache: list[np.ndarray], keep: int) -> list[np.ndarray]:
        """Roll the cache back to its first `keep` positions (what the browser does after a rejection)."""
        return [t[:, :, :keep] for t in cache]


def _template(folder: Path) -> tuple[str, dict[str, str]]:
    """The chat template and the special tokens a template may name (bos_token, eos_token, ...)."""
    config = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text(encoding="utf-8"))
    template = config.get("chat_template")
    if not isinstance(template, str):
        raise ValueError(f"{folder}/tokenizer/tokenizer_config.json has no chat_template")
    return template, {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}


def encode(folder: Path, prompt: str, chat: bool = True) -> list[int]:
    """Prompt text → target ids with the folder's tokenizer; with `chat`, wrapped in the chat template
    as one user message with the generation prompt (as specviz.models.lm.CausalLM.encode does)."""
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from tokenizers import Tokenizer

    folder = Path(folder)
    tok = Tokenizer.from_file(str(folder / "tokenizer" / "tokenizer.json"))
    if not chat:
        return tok.encode(prompt).ids
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    template, special = _template(folder)
    text = env.from_string(template).render(
        messages=[{"role": "user", "content": prompt}], add_generation_prompt=True, **special
    )
    return tok.encode(text, add_special_tokens=False).ids


@dataclass(frozen=True)
class Emitted:
    """One greedily emitted token and the gap between the two best logits there (nats)."""

    token_id: int
    margin: float


def _greedy_model(lm: OrtLM, ids: list[int], n_tokens: int, eos: set[int]) -> list[Emitted]:
    out: list[Emitted] = []
    logits, cache = lm.forward(ids, lm.empty_cache())
    for _ in range(n_tokens):
        row = logits[-1]
        best = int(np.argmax(row))  # a tie goes to the lowest id, as torch.argmax does
        out.append(Emitted(best, float(row[best] - np.partition(row, -2)[-2])))
        if best in eos:
            break
        logits, cache = lm.forward([best], cache)
    return out


def greedy_margins(
    folder: Path, prompt: str | list[int], n_tokens: int, *, chat: bool = True, stop_at_eos: bool = True
) -> list[Emitted]:
    """Decode `n_tokens` greedily with the folder's target alone (stopping after an end-of-sequence
    token, which is included, when `stop_at_eos`). `prompt` is text (encoded with `encode`) or ids."""
    folder = Path(folder)
    meta = manifest(folder)
    ids = encode(folder, prompt, chat) if isinstance(prompt, str) else list(prompt)
    eos = set(meta.get("eos_token_ids", [])) if stop_at_eos else set()
    return _greedy_model(OrtLM(folder / meta["target"]["file"]), ids, n_tokens, eos)


def greedy(
    folder: Path, prompt: str | list[int], n_tokens: int, *, chat: bool = True, stop_at_eos: bool = True
) -> list[int]:
    """The emitted token ids of greedy_margins."""
    return [e.token_id for e in greedy_margins(folder, prompt, n_tokens, chat=chat, stop_at_eos=stop_at_eos)]
