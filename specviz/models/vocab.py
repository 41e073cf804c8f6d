"""Vocabularies: a reduced draft vocabulary mapped into the target's (TokenMap, FR-Spec style) and a
tokenizer's fingerprint, so a draft made for another vocabulary is refused instead of proposing
unrelated tokens.

Imports: torch, specviz.models.presets.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from specviz.models.presets import ModelLoadError

__all__ = ["TokenMap", "differs", "vocab_fingerprint"]


@dataclass
class TokenMap:
    """A draft vocabulary that is a subset of the target's: draft id i is target id target_ids[i].

    The draft's extra last id (`unk`) stands for every target token outside the subset; it is
    only ever an input, never proposed.
    """

    target_ids: torch.Tensor  # [V_draft - 1]
    unk: int
    lookup: torch.Tensor  # [V_target] target id → draft id (unk where absent)

    @classmethod
    def read(cls, path: Path, target_vocab: int, tokenizer: Any | None = None) -> TokenMap:
        """Read token_map.json. With `tokenizer`, first check that the map was made for that
        tokenizer's vocabulary (the file's "vocab" fingerprint, when it has one): a map over
        another vocabulary would propose unrelated tokens. Raises ModelLoadError."""
        raw = json.loads(path.read_text())
        made_for = raw.get("vocab")
        if tokenizer is not None and made_for is not None and differs(made_for, vocab_fingerprint(tokenizer)):
            raise ModelLoadError(
                f"the draft in {path.parent} was made for a {made_for.get('size')}-token vocabulary "
                f"({made_for.get('made_for', 'another tokenizer')}) and the evaluation model's tokenizer "
                f"({len(tokenizer)} tokens) is a different one; pass a draft of the evaluation model's family "
                "(--draft HUB_ID or DIR) or --draft ngram"
            )
        ids = torch.tensor(raw["target_ids"], dtype=torch.long)
        lookup = torch.full((max(target_vocab, int(ids.max()) + 1),), int(raw["unk"]), dtype=torch.long)
        lookup[ids] = torch.arange(len(ids))
        return cls(ids, int(raw["unk"]), lookup)

    @staticmethod
    def dumps(target_ids: list[int], tokenizer: Any, made_for: str) -> str:
        """token_map.json for a draft over `target_ids` of `tokenizer`'s vocabulary (with its fingerprint)."""
        vocab = {**vocab_fingerprint(tokenizer), "made_for": made_for}
        return json.dumps({"unk": len(target_ids), "target_ids": target_ids, "vocab": vocab})

    def to_draft(self, ids: list[int]) -> list[int]:
        return self.lookup[torch.tensor(ids, dtype=torch.long)].tolist()

    def to_target(self, probs: torch.Tensor, vocab_size: int) -> torch.Tensor:
        """[V_draft] draft distribution → [vocab_size] over the target's ids (unk's mass dropped)."""
        probs = probs[: len(self.target_ids)]
        out = torch.zeros(vocab_size, dtype=probs.dtype, device=probs.device)
        out[self.target_ids.to(probs.device)] = probs
        total = out.sum()
        return out / total if total > 0 else out


def vocab_fingerprint(tokenizer: Any) -> dict[str, object]:
    """{"size", "sha256"}: the tokenizer's size and a hash of its (token, id) pairs. Two tokenizers
    with the same fingerprint give every token the same id."""
    pairs = json.dumps(sorted(tokenizer.get_vocab().items()), ensure_ascii=False).encode()
    return {"size": len(tokenizer), "sha256": hashlib.sha256(pairs).hexdigest()}


def differs(made_for: dict[str, object], fingerprint: dict[str, object]) -> bool:
    return any(made_for.get(k) != v for k, v in fingerprint.items())
