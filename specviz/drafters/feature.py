"""An EAGLE-style feature draft: a one-layer head that reads the evaluation model's own features.

A separate small draft model sees only the tokens. This head also sees what the evaluation
model computed: its last hidden state f_i (after the final norm, the vector its output layer
turns into p) at every position it has read. Following EAGLE (Li et al. 2024, arXiv 2401.15077,
section 3), the head reads a pair (f_i, e(t_{i+1})) — the feature at position i and the
embedding of the token that was actually sampled after it — and predicts the next feature
f̂_{i+1}; the target's own output layer turns f̂ into the draft's q. For later drafts of a step it
rolls forward on its own predictions: (f̂_{i+1}, e(d_1)) → f̂_{i+2}, and so on.

Choices (see assets/feature_draft/README.md for why):
- one decoder layer at the target's width (EAGLE's size), with the target's final norm on top,
  so predicted features live where the real ones do;
- the target's embedding and output layer are reused, frozen, not stored: the head file holds only
  the fc fusion, the layer and the norm; the output layer is cut to a frequent-token subset
  (FR-Spec, Zhao et al. 2025, arXiv 2502.14856) so a draft token costs a few percent of a target pass;
- trained with a training-time test (EAGLE-3, arXiv 2503.01840; HASS, arXiv 2408.15766): later
  draft positions are trained on the head's own predicted features (specviz.train.feature).

Pure torch: the model layer (specviz.models.lm) hands over the target's tensors.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from specviz.core.drafting import Proposal
from specviz.core.tree import DraftTree, TreeShape, ancestors, depths, feed_mask, grow
from specviz.core.warp import UNTEMPERED, Sampling, sample, warp
from specviz.drafters.ngram import LookupFallback
from specviz.models.lm import CausalLM
from specviz.models.presets import ModelLoadError
from specviz.models.vocab import TokenMap

__all__ = [
    "FeatureDrafter",
    "FeatureHead",
    "FeatureModel",
    "HeadConfig",
    "eagle3_layers",
    "feature_words",
    "is_head_dir",
    "load_feature_draft",
    "save_head",
]

CONFIG_NAME = "head_config.json"
FEATURE_WORDS = "the evaluation model's last hidden state (after its final norm)"


def eagle3_layers(num_layers: int) -> tuple[int, ...]:
    """A low, a middle and a high layer, as EAGLE-3 fuses them (arXiv 2503.01840; vLLM's default taps
    (2, L // 2, L - 3)): indices into transformers' `hidden_states`, the input to each of those layers."""
    return (2, num_layers // 2, num_layers - 3)


def feature_words(layers: tuple[int, ...]) -> str:
    """What a head with these `layers` reads, in words (meta.draft.reads, the model card)."""
    if not layers:
        return FEATURE_WORDS
    return f"the evaluation model's hidden states entering layers {', '.join(map(str, layers))}, fused (EAGLE-3)"


@dataclass(frozen=True)
class HeadConfig:
    """The head's shape: the target's width, heads and RoPE, one layer."""

    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    rope_theta: float
    rms_norm_eps: float
    feature: str = "last-hidden-state"  # which target feature the head reads (EAGLE-1's choice)
    target: str = ""  # the evaluation model the head was trained for
    # () = the last hidden state; else transformers' hidden_states indices, concatenated and fused by
    # `FeatureHead.fuse` into one feature (EAGLE-3's low, middle and high layers)
    layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))  # JSON gives a list

    @classmethod
    def from_target(cls, config: Any, target: str = "") -> HeadConfig:
        """The shape that matches a transformers config of a Llama-like target (duck-typed)."""
        rope = getattr(config, "rope_parameters", None) or {}
        theta = float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))
        heads = int(config.num_attention_heads)
        return cls(
            hidden_size=int(config.hidden_size),
            num_heads=heads,
            num_kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(getattr(config, "head_dim", None) or config.hidden_size // heads),
            intermediate_size=int(config.intermediate_size),
            rope_theta=theta,
            rms_norm_eps=float(getattr(config, "rms_norm_eps", 1e-6)),
            target=target,
        )


class _RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def _rope(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotary position embedding (RoFormer; the half-split layout Llama uses). x: [B, H, T, hd], pos: [T]."""
    hd = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, hd, 2, dtype=torch.float32, device=x.device) / hd)
    ang = pos.to(torch.float32)[:, None] * inv[None, :]  # [T, hd/2]
    cos, sin = torch.cat([ang, ang], -1).cos().to(x.dtype), torch.cat([ang, ang], -1).sin().to(x.dtype)
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], -1)
    return x * cos + rotated * sin


class FeatureHead(nn.Module):
    """fc([e(t_{i+1}); f_i]) → one Llama decoder layer → final norm → f̂_{i+1}.

    Shapes: features and embeddings [B, T, d]; positions [T] (the pair index i); keys/values
    [B, kv_heads, T, head_dim]. The output is a feature [B, T, d] for the target's output layer.
    A head that reads several layers (cfg.layers) first fuses them: `fuse_features` [.., n·d] → [.., d]
    (EAGLE-3); the features it predicts itself are [.., d] already and are not fused.
    """

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        d, hd = cfg.hidden_size, cfg.head_dim
        self.cfg = cfg
        self.fuse = nn.Linear(len(cfg.layers) * d, d, bias=False) if cfg.layers else None
        self.fc = nn.Linear(2 * d, d, bias=False)
        self.input_norm = _RMSNorm(d, cfg.rms_norm_eps)
        self.q_proj = nn.Linear(d, cfg.num_heads * hd, bias=False)
        self.k_proj = nn.Linear(d, cfg.num_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(d, cfg.num_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.num_heads * hd, d, bias=False)
        self.post_norm = _RMSNorm(d, cfg.rms_norm_eps)
        self.gate_proj = nn.Linear(d, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(d, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, d, bias=False)
        self.norm = _RMSNorm(d, cfg.rms_norm_eps)  # started from the target's final norm

    def fuse_features(self, features: torch.Tensor) -> torch.Tensor:
        """The target's features as the head reads them: [.., n·d] → [.., d] for a multi-layer head,
        unchanged [.., d] for a last-hidden-state head."""
        return features if self.fuse is None else self.fuse(features)

    def project(
        self, feature: torch.Tensor, emb: torch.Tensor, pos: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pairs → (residual x [B,T,d], q [B,H,T,hd], k, v [B,kvH,T,hd]) with RoPE at `pos`."""
        cfg = self.cfg
        x = self.fc(torch.cat([emb, feature], -1))
        h = self.input_norm(x)
        b, t, _ = h.shape
        q = self.q_proj(h).view(b, t, cfg.num_heads, cfg.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(b, t, cfg.num_kv_heads, cfg.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(b, t, cfg.num_kv_heads, cfg.head_dim).transpose(1, 2)
        return x, _rope(q, pos, cfg.rope_theta), _rope(k, pos, cfg.rope_theta), v

    def finish(
        self, x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """Attention of q over (k, v) with a boolean `mask` [Tq, Tk] (True = may attend; None = causal),
        then the MLP and the final norm: the predicted features [B, Tq, d]."""
        rep = self.cfg.num_heads // self.cfg.num_kv_heads
        k, v = k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None)
        b, _, t, _ = a.shape
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, -1))
        h = self.post_norm(x)
        x = x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))
        return self.norm(x)

    def forward(
        self,
        feature: torch.Tensor,
        emb: torch.Tensor,
        pos: torch.Tensor,
        past: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Causal pass over new pairs after `past` keys/values; returns (f̂ [B,T,d], all keys/values)."""
        x, q, k, v = self.project(feature, emb, pos)
        mask = None
        if past is not None and past[0].shape[2] > 0:
            n_past, t = past[0].shape[2], k.shape[2]
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
            mask = torch.ones(t, n_past + t, dtype=torch.bool, device=k.device).tril(n_past)
        return self.finish(x, q, k, v, mask), (k, v)


@dataclass(frozen=True)
class FeatureModel:
    """The feature draft as a model: a loaded head and the target tensors it uses; shared, read-only. One
    is loaded per server (like a CausalLM); a FeatureDrafter is made per run and drafts with it (as a
    ModelDrafter does with a draft CausalLM).

    `embed` [V, d] is the target's input embedding; `out_rows` [V_sub, d] the rows of its output
    layer for `token_map`'s subset (all rows when token_map is None)."""

    head: FeatureHead
    embed: torch.Tensor
    out_rows: torch.Tensor
    vocab_size: int  # the target's logits width
    token_map: TokenMap | None = None
    name: str = "specviz feature draft"

    def meta(self) -> dict[str, Any]:
        """What the trace records about this draft (meta.draft)."""
        return {
            "name": self.name,
            "kind": "feature",
            "reads": feature_words(self.head.cfg.layers),
            "layers": list(self.head.cfg.layers) or [-1],  # -1: the last hidden state
            "params": sum(p.numel() for p in self.head.parameters()),
            "vocab": len(self.out_rows),
        }


@dataclass
class FeatureDrafter:
    """Drafts with a FeatureHead: reads the target's features, proposes gamma tokens with their q.

    The head keeps its own key/value cache: pairs built from real features stay; pairs built from
    its own predictions (the later drafts of a step) are dropped at the next proposal.
    """

    draft: FeatureModel
    name: str = ""
    lookup: LookupFallback | None = None  # copy from earlier text where the head is unsure (as ModelDrafter)
    reads_features = True  # class attribute: the decoder hands this drafter the target's features
    _features: torch.Tensor | None = field(default=None, repr=False)  # [N, d] for positions 0..N-1
    _kv: tuple[torch.Tensor, torch.Tensor] | None = field(default=None, repr=False)
    _pairs: int = field(default=0, repr=False)  # cached pairs made from real features

    def __post_init__(self) -> None:
        self.name = self.name or self.draft.name

    @property
    def feature_layers(self) -> tuple[int, ...]:
        """The target's hidden states this head reads (HeadConfig.layers; () = the last one)."""
        return self.draft.head.cfg.layers

    def read_features(self, features: torch.Tensor, start: int) -> None:
        """Hear the target's features [k, d] (or [k, n·d] for a multi-layer head, fused here) at
        positions start..start+k-1 (start 0: a new sequence).

        Raises ValueError when start skips positions that were never heard."""
        have = 0 if self._features is None else len(self._features)
        if start > have:
            raise ValueError(f"features from position {start}, but only {have} are known: a position was skipped")
        with torch.inference_mode():
            new = self.draft.head.fuse_features(features.detach().to(self.draft.embed.dtype))
        self._features = new if start == 0 or self._features is None else torch.cat([self._features[:start], new])
        self._pairs = min(self._pairs, start)

    def propose(
        self,
        ids: list[int],
        gamma: int,
        sampling: Sampling,
        generator: torch.Generator,
        min_confidence: float | None = None,
    ) -> Proposal:
        """Up to gamma drafts continuing `ids`; with min_confidence, stop after a draft whose own q(x)
        (before warping) is below it.

        Needs the features of positions 0..len(ids)-2 (read_features); with fewer (a one-token prompt),
        it drafts nothing this step."""
        d = self.draft
        n_true = min(0 if self._features is None else len(self._features), len(ids) - 1)
        if gamma <= 0 or n_true < 1 or self._features is None:
            return Proposal([], torch.zeros(0, d.vocab_size), None if gamma <= 0 else "no_context")
        dev = d.embed.device
        with torch.inference_mode():
            keep = min(self._pairs, n_true - 1)  # the last real pair is always run: its output is the first draft's
            past = None if self._kv is None else (self._kv[0][:, :, :keep], self._kv[1][:, :, :keep])
            # the pairs (f_i, t_{i+1}) not yet in the head's cache, all from real features
            toks = torch.tensor(ids[keep + 1 : n_true + 1], dtype=torch.long, device=dev)
            pos = torch.arange(keep, n_true, device=dev)
            out, self._kv = d.head(self._features[keep:n_true][None], d.embed[toks][None], pos, past)
            self._pairs = n_true
            h = out[0, -1]
            tokens: list[int] = []
            qs: list[torch.Tensor] = []
            raws: list[torch.Tensor] = []
            copied: list[int] = []
            for j in range(gamma):
                logits = d.out_rows @ h
                q = self._q(logits, sampling)
                if not sampling.identity:
                    raws.append(self._q(logits, UNTEMPERED))
                x, n = sample(q, float(torch.rand(1, generator=generator))), 0
                own = raws[-1] if raws else q  # the head's own q, before warping: greedy's q is one-hot
                found = None if self.lookup is None else self.lookup.copy(ids, tokens, own)
                if found is not None:  # a one-hot q, as ModelDrafter's copies (the uniform was drawn either way)
                    x, n = found
                    q = torch.zeros_like(q)
                    q[x] = 1.0
                    if raws:
                        raws[-1] = q
                tokens.append(x)
                qs.append(q)
                copied.append(n)
                if j == gamma - 1 or (min_confidence is not None and not n and float(own[x]) < min_confidence):
                    break
                # roll forward on the head's own prediction; these pairs are dropped next step
                emb = d.embed[torch.tensor([x], device=dev)][None]
                out, self._kv = d.head(h.view(1, 1, -1), emb, torch.tensor([n_true + j], device=dev), self._kv)
                h = out[0, -1]
        return Proposal(
            tokens,
            torch.stack(qs).float(),
            q_raw=torch.stack(raws).float() if raws else None,
            copied=copied if self.lookup else [],
        )

    def propose_tree(
        self,
        ids: list[int],
        shape: TreeShape,
        sampling: Sampling,
        generator: torch.Generator,
        sampled: bool,
        max_depth: int,
    ) -> DraftTree:
        """A draft tree from the head (EAGLE-2's way): the real pairs as in propose(), then one pass of
        the head per depth over the nodes that depth expands, each node's pair (its parent's predicted
        feature, its token) attending to the real pairs, its ancestors' pairs and itself."""
        d = self.draft
        n_true = min(0 if self._features is None else len(self._features), len(ids) - 1)
        if max_depth <= 0 or n_true < 1 or self._features is None:
            return DraftTree(
                [], [], torch.zeros(0, d.vocab_size), why_empty="budget" if max_depth <= 0 else "no_context"
            )
        dev = d.embed.device
        with torch.inference_mode():
            keep = min(self._pairs, n_true - 1)
            past = None if self._kv is None else (self._kv[0][:, :, :keep], self._kv[1][:, :, :keep])
            toks = torch.tensor(ids[keep + 1 : n_true + 1], dtype=torch.long, device=dev)
            out, self._kv = d.head(
                self._features[keep:n_true][None], d.embed[toks][None], torch.arange(keep, n_true, device=dev), past
            )
            self._pairs = n_true
            feats: dict[int, torch.Tensor] = {-1: out[0, -1]}  # node → the head's predicted feature after it
            slots: dict[int, int] = {}

            def feed(nodes: list[int], tree: DraftTree) -> tuple[torch.Tensor, torch.Tensor | None]:
                kv = self._kv
                n_past = kv[0].shape[2]
                depth = depths(tree.parents)
                parent_f = torch.stack([feats[tree.parents[j]] for j in nodes])[None]
                emb = d.embed[torch.tensor([tree.token_ids[j] for j in nodes], device=dev)][None]
                pos = torch.tensor([n_true + depth[j] - 1 for j in nodes], device=dev)
                x, q, k, v = d.head.project(parent_f, emb, pos)
                k_all, v_all = torch.cat([kv[0], k], 2), torch.cat([kv[1], v], 2)
                visible = [[slots[a] for a in ancestors(tree.parents, j)[:-1]] for j in nodes]
                mask = feed_mask(n_past, n_true, visible).to(dev)
                h = d.head.finish(x, q, k_all, v_all, mask)[0]
                self._kv = (k_all, v_all)
                for i, j in enumerate(nodes):
                    slots[j], feats[j] = n_past + i, h[i]
                logits = h @ d.out_rows.T
                qs = torch.stack([self._q(row, sampling) for row in logits]).float()
                raw = None if sampling.identity else torch.stack([self._q(row, UNTEMPERED) for row in logits]).float()
                return qs, raw

            root = d.out_rows @ feats[-1]
            raw_root = None if sampling.identity else self._q(root, UNTEMPERED).float()
            tree = grow(shape, self._q(root, sampling).float(), raw_root, feed, sampled, generator, max_depth)
        if self.lookup is not None and not sampled:  # greedy: the copy as a branch beside the head's
            tree = self.lookup.graft(tree, ids, min(max_depth, shape.depth), d.vocab_size)
        return tree

    def _q(self, logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
        probs = warp(logits.float(), sampling)
        tmap = self.draft.token_map
        return probs if tmap is None else tmap.to_target(probs, self.draft.vocab_size)

    def meta(self) -> dict[str, Any]:
        out = self.draft.meta()
        if self.lookup is not None:
            out["lookup"] = self.lookup.meta()
        return out


def save_head(
    head: FeatureHead, out: Path, token_map: list[int] | None, stats: dict[str, Any], tokenizer: Any = None
) -> None:
    """Write the head as safetensors (bf16) + head_config.json + token_map.json + training.json.

    With `tokenizer` (the target's), token_map.json carries its vocabulary fingerprint, so the head
    is refused for a target with another vocabulary."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to(torch.bfloat16).contiguous() for k, v in head.state_dict().items()}
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / CONFIG_NAME).write_text(json.dumps(asdict(head.cfg), indent=2) + "\n")
    if token_map is not None:
        text = json.dumps({"unk": len(token_map), "target_ids": token_map})
        if tokenizer is not None:
            text = TokenMap.dumps(token_map, tokenizer, str(stats.get("target", "the evaluation model")))
        (out / "token_map.json").write_text(text)
    (out / "training.json").write_text(json.dumps(stats, indent=2) + "\n")


def is_head_dir(path: Path) -> bool:
    return (path / CONFIG_NAME).is_file()


def load_feature_draft(path: Path, target: CausalLM, name: str | None = None) -> FeatureModel:
    """A FeatureModel for `target` from a head directory (safetensors weights, never pickles).

    Raises ModelLoadError when the files are missing or the head was made for another shape of target."""
    from safetensors.torch import load_file

    if not is_head_dir(path) or not (path / "model.safetensors").is_file():
        raise ModelLoadError(
            f"no feature draft in {path} (needs {CONFIG_NAME} and model.safetensors); "
            "restore it with git, or train one: python -m specviz.train feature"
        )
    try:
        cfg = HeadConfig(**json.loads((path / CONFIG_NAME).read_text()))
    except (TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path / CONFIG_NAME} is not a feature-draft config: {exc}") from exc
    want = HeadConfig.from_target(target.model.config)
    n_layers = int(getattr(target.model.config, "num_hidden_layers", 0) or 0)
    if cfg.layers and n_layers and not all(0 <= i <= n_layers for i in cfg.layers):
        raise ModelLoadError(
            f"the feature draft in {path} reads layers {list(cfg.layers)}, but {target.name!r} has {n_layers}: "
            "train a head for this target"
        )
    if (cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads) != (want.hidden_size, want.num_heads, want.num_kv_heads):
        raise ModelLoadError(
            f"the feature draft in {path} was made for a target of width {cfg.hidden_size} "
            f"({cfg.target or 'unknown'}); {target.name!r} has width {want.hidden_size}: "
            "train a head for this target, or use a draft model (--draft HUB_ID or DIR) or --draft ngram"
        )
    head = FeatureHead(cfg)
    head.load_state_dict({k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()})
    head = head.to(device=target.device, dtype=target.dtype).eval()
    embed = target.model.get_input_embeddings().weight.detach()
    out = target.model.get_output_embeddings().weight.detach()
    tmap = None
    rows = out[: target.vocab_size]
    if (path / "token_map.json").is_file():
        tmap = TokenMap.read(path / "token_map.json", target.vocab_size, target.tokenizer)
        keep = tmap.target_ids < min(len(target.tokenizer), target.vocab_size)  # never propose padding rows
        tmap = TokenMap(tmap.target_ids[keep], tmap.unk, tmap.lookup)
        rows = out[tmap.target_ids.to(out.device)]
    return FeatureModel(head, embed, rows.contiguous(), target.vocab_size, tmap, name or f"feature draft ({path.name})")
