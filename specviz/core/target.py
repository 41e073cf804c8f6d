"""What the decoder asks of the evaluation (target) model: the Target protocol.

specviz.models.lm.CausalLM is the implementation (transformers); the decoder and the drafters'
protocol see only this, so the core never imports the model layer. Shapes: logits [rows, V] float32,
features [rows, d]; a cache is whatever `new_cache` returns (a transformers DynamicCache there).

Imports: torch only.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

__all__ = ["Target"]


class Target(Protocol):
    device: torch.device
    dtype: torch.dtype

    @property
    def vocab_size(self) -> int: ...

    @property
    def eos_token_ids(self) -> list[int]: ...

    def new_cache(self) -> Any: ...

    def forward(self, cache: Any, input_ids: list[int], last: int = 0) -> torch.Tensor:
        """Append input_ids to the cache; logits [len(input_ids) or last, V]."""
        ...

    def forward_features(
        self, cache: Any, input_ids: list[int], last: int = 0, layers: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As forward(), and the last hidden state at every input position [len(input_ids), d] (with
        `layers`: the hidden states entering those layers, concatenated [len(input_ids), n·d])."""
        ...

    def forward_tree(
        self,
        cache: Any,
        input_ids: list[int],
        positions: list[int],
        mask: torch.Tensor,
        features: bool = False,
        layers: tuple[int, ...] = (),
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A pass with explicit positions and a tree attention mask [T, past + T] (True = may attend)."""
        ...

    def keep(self, cache: Any, positions: list[int]) -> None:
        """Keep only the listed cache positions, in that order."""
        ...

    def cache_length(self, cache: Any) -> int: ...

    def rollback(self, cache: Any, keep: int) -> None:
        """Keep only the first `keep` cache positions."""
        ...

    def sync(self) -> None:
        """Wait for queued device work (step timings measure work, not its launch)."""
        ...

    def token_text(self, token_id: int) -> str: ...

    def token_bytes(self, token_id: int) -> bytes | None: ...
