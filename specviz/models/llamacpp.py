"""llama.cpp on the embedded evaluation model's own GGUF: the peer a CPU user picks for raw speed.

A benchmark-only extra (issue 20, item 5): `make peer` builds llama-cpp-python (requirements-peer.txt)
from the registry's source for this CPU; `make run` and `make test` never need it. llama.cpp computes
with the GGUF's 4-bit blocks as they are stored (activations rounded to 8-bit blocks), so its greedy
tokens may part from the dequantised model's: it is a speed peer, not an exactness reference.

Imports: llama_cpp (lazily), numpy, specviz.models.gguf.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from specviz.models.gguf import default_gguf_path
from specviz.models.presets import ModelLoadError

__all__ = ["LlamaCppTarget", "load_llamacpp"]

INSTALL = "`make peer` (llama-cpp-python, built for this CPU, ~6 min on 2 cores)"


class LlamaCppTarget:
    """One llama.cpp context over a GGUF: greedy decoding from token ids, and timed passes over k positions.

    `logits_all` keeps a logits row for every position of a pass (what verification needs: p at each
    of γ + 1 positions); without it llama.cpp computes the last row only, as a one-token decode does.
    """

    def __init__(self, llm: Any, gguf: Path, threads: int) -> None:
        self.llm = llm
        self.gguf = gguf
        self.threads = threads
        self.vocab_size = int(llm.n_vocab())
        self.eos = {int(llm.token_eos())}
        self.name = f"llama.cpp {gguf.name} ({threads} threads)"

    def _last_logits(self) -> np.ndarray:
        import llama_cpp

        ptr = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.vocab_size,))

    def greedy(self, ids: list[int], max_new_tokens: int) -> list[int]:
        """The evaluation model alone, greedy: prompt `ids` prefilled in one pass, then one token a pass;
        stops at end of turn or after `max_new_tokens`. Returns the new token ids."""
        self.llm.reset()
        self.llm.eval(ids)
        out: list[int] = []
        while len(out) < max_new_tokens:
            tok = int(np.argmax(self._last_logits()))
            out.append(tok)
            if tok in self.eos:
                break
            self.llm.eval([tok])
        return out

    def prefill(self, ids: list[int]) -> int:
        """Evaluate a prompt; returns its length (where `pass_over` rolls back to)."""
        self.llm.reset()
        self.llm.eval(ids)
        return len(ids)

    def pass_over(self, base: int, new: list[int]) -> None:
        """One pass over `new` after the first `base` positions, then rolled back to `base` (llama.cpp
        drops the cache past `n_tokens` before its next pass)."""
        self.llm.n_tokens = base
        self.llm.eval(new)
        self.llm.n_tokens = base


def load_llamacpp(gguf: Path | None = None, threads: int | None = None, logits_all: bool = False) -> LlamaCppTarget:
    """The GGUF (default: the embedded evaluation model's) in llama.cpp on `threads` CPU threads (default:
    torch's count, so both peers use the same cores). Raises ModelLoadError when llama-cpp-python is
    missing (with how to install it) or the file does not load."""
    try:
        import llama_cpp
    except ImportError:
        raise ModelLoadError(f"llama.cpp is not installed here: run {INSTALL}") from None
    path = gguf or default_gguf_path()
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    threads = max(1, min(threads, os.cpu_count() or 1))
    try:
        llm = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=2048,
            n_batch=512,
            n_threads=threads,
            n_threads_batch=threads,
            logits_all=logits_all,
            verbose=False,
        )
    except (ValueError, RuntimeError, OSError) as exc:
        raise ModelLoadError(f"llama.cpp could not load {path}: {exc}") from None
    return LlamaCppTarget(llm, path, threads)
