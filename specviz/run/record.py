"""Run the decoder and collect its steps into a trace (meta, prompt, steps, output)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from specviz.core.decoder import DecodeConfig, speculative_decode
from specviz.core.drafting import Drafter
from specviz.models.lm import CausalLM
from specviz.trace import JsonlWriter, Step, Trace, finish, new_trace

__all__ = ["Recording"]


class Recording:
    """Iterate to run: yields each step as it is done; `trace` is complete (with output) afterwards.

    Leaving the loop early (a Stop button, a closed tab) still finishes the trace, with
    stop_reason "stopped", so the partial run can be kept.
    """

    def __init__(
        self,
        target: CausalLM,
        drafter: Drafter,
        prompt: str,
        cfg: DecodeConfig,
        *,
        chat: bool | None = None,
        prompt_ids: list[int] | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        jsonl: JsonlWriter | Path | None = None,
        extra_meta: dict[str, Any] | None = None,
    ) -> None:
        self.target, self.drafter, self.cfg = target, drafter, cfg
        self.should_stop = should_stop
        self.prompt_ids = prompt_ids if prompt_ids is not None else target.encode(prompt, chat)
        used_chat = bool(getattr(target.tokenizer, "chat_template", None)) if chat is None else chat
        meta = {
            "target": {"name": target.name},
            "draft": drafter.meta(),
            # a tree's gamma is its depth: the longest line of drafts a step can accept
            "gamma": cfg.gamma if cfg.tree.kind == "chain" else cfg.tree.depth,
            **({"tree": cfg.tree.meta()} if cfg.tree.kind != "chain" else {}),
            "rule": {"name": cfg.rule.name, "params": dict(cfg.rule.params), "lossless": cfg.rule.lossless},
            "sampling": {
                "temperature": cfg.sampling.temperature,
                "top_k": cfg.sampling.top_k,
                "top_p": cfg.sampling.top_p,
            },
            "seed": cfg.seed,
            "max_new_tokens": cfg.max_new_tokens,
            "chat": used_chat and prompt_ids is None,
            "eos_token_ids": target.eos_token_ids,
            "device": str(target.device),
            "dtype": str(target.dtype).removeprefix("torch."),
            "numerics": target.meta(),
            "top_k_logged": cfg.top_k_log,
            # a tree's size is its shape's: the draft-length policy applies to chains only
            **(
                {"gamma_policy": cfg.gamma_policy.meta(cfg.gamma)}
                if cfg.gamma_policy is not None and cfg.tree.kind == "chain"
                else {}
            ),
            **(extra_meta or {}),
        }
        self.trace: Trace = new_trace(meta, prompt, self.prompt_ids)
        # a path streams the trace to JSONL as it grows: header now, each step as it is done
        self.jsonl = JsonlWriter(jsonl, self.trace) if isinstance(jsonl, Path) else jsonl

    def __iter__(self) -> Iterator[Step]:
        stop = None
        try:
            for step in speculative_decode(self.target, self.drafter, self.prompt_ids, self.cfg, self.should_stop):
                if self.jsonl is not None:
                    self.jsonl.step(step)  # first: a step that cannot be written is not kept anywhere
                self.trace["steps"].append(step)
                yield step
            if self.should_stop():
                stop = "stopped"
        except (GeneratorExit, Exception):
            stop = "stopped"  # a failed run ends like a stopped one: the finished steps, and a valid output
            raise
        finally:
            self._finish(stop)

    def _finish(self, stop_reason: str | None) -> None:
        finish(self.trace, stop_reason)
        out = self.trace["output"]
        out["text"] = self.target.tokenizer.decode(out["token_ids"])
        if self.jsonl is not None:
            try:
                self.jsonl.output(out)
            finally:
                self.jsonl.close()

    def run(self) -> Trace:
        for _ in self:
            pass
        return self.trace
