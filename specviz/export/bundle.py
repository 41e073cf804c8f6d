"""`python -m specviz export-live`: the embedded pair as a static folder that decodes in a browser.

    DIR/models/target.onnx, DIR/models/draft.onnx      the I/O contract of specviz.export.onnxgraph
    DIR/tokenizer/tokenizer.json                       the target's tokenizer (the draft shares it)
    DIR/tokenizer/tokenizer_config.json                with the chat template in it as `chat_template`
    DIR/manifest.json                                  what the page needs to know (MANIFEST_VERSION)
    DIR/...                                            every file of specviz/assets/live (the page)

manifest.json: {"version", "target": {"file", "vocab_size", "num_layers", "num_kv_heads", "head_dim",
"name", "quant", "bytes"}, "draft": {the same, "token_map": [the target id of draft id i, for every
draft id but the last], "unk_id": that last id (vocab_size − 1), which stands for every target token
outside the draft's vocabulary: only ever an input, never proposed}, "eos_token_ids", "pad_token_id",
"chat_template", "specviz_version", "versions", "exported_at"}. The draft is stored in DRAFT_QUANT[quant].

The folder is built in a temporary folder beside DIR and renamed into place at the end, so a failed
export leaves no half-written folder. The ONNX files are cached per machine under
$SPECVIZ_CACHE/onnx (default ~/.cache/specviz/onnx), keyed by the source files' names, sizes and
times, the torch and onnx versions and this package's export code: the first export takes ~2
minutes on 2 cores, later ones seconds.

Imports: specviz.export's own modules, specviz.models (gguf and presets; lm and the export's torch code only
when a model is exported), specviz.trace.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from specviz.export.quantize import DEFAULT_QUANT, QUANTS, quantize
from specviz.models.gguf import cache_root, converted_dir, default_gguf_path
from specviz.models.presets import DRAFT_DIR, REPO_ROOT
from specviz.trace import library_versions

if TYPE_CHECKING:  # torch and transformers: not for a cache hit
    from specviz.models.lm import CausalLM

__all__ = [
    "DRAFT_QUANT",
    "LIVE_ASSETS",
    "MANIFEST_VERSION",
    "ExportError",
    "cached_model",
    "folder_bytes",
    "write_bundle",
]

MANIFEST_VERSION = 1
LIVE_ASSETS = Path(__file__).resolve().parents[1] / "assets" / "live"
ROLES = ("target", "draft")
# The draft's trained weights sit on no 4-bit grid: q4 rounds them so far that it parts from itself within
# a few tokens (docs/results/onnx-export.json), while int8 keeps it within near-ties at 5 MB.
DRAFT_QUANT = {"fp32": "fp32", "int8": "int8", "q4": "int8"}
_HERE = Path(__file__).parent  # the export code: a change to onnxgraph.py re-exports, to quantize.py re-stores


class ExportError(RuntimeError):
    """The folder could not be written; the message says why and what to do."""


def _sources(role: str) -> list[Path]:
    """The files a role's export is made from (their names, sizes and times key the cache)."""
    src = converted_dir(default_gguf_path()) if role == "target" else DRAFT_DIR
    names = ["config.json", "model.safetensors"] + (["token_map.json"] if role == "draft" else [])
    return [src / n for n in names]


def _code(name: str) -> str:
    return hashlib.sha256((_HERE / name).read_bytes()).hexdigest()[:12]


def _cache_key(role: str) -> str:
    """What an fp32 export is made from: the source files (name, size, time), torch, onnx, onnxgraph.py."""
    from importlib.metadata import version

    stamp = {
        "role": role,
        "sources": [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in _sources(role)],
        "torch": version("torch"),
        "onnx": version("onnx"),
        "code": _code("onnxgraph.py"),
    }
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]


def _load(role: str) -> CausalLM:
    """The embedded target or draft in float32 on the CPU (the model layer loads only on a cache miss)."""
    from specviz.models.lm import load_model
    from specviz.models.presets import DEFAULT

    target = load_model(DEFAULT, "cpu", "float32")
    if role == "target":
        return target
    return load_model(DEFAULT, "cpu", "float32", role="draft", tokenizer=target.tokenizer)


def _write_atomic(write: Callable[[Path], object], dst: Path) -> None:
    """write(tmp) then rename tmp → dst: a reader never sees half a file."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        write(tmp)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)


def cached_model(role: str, quant: str, say: Callable[[str], None] = print) -> tuple[Path, dict]:
    """The ONNX file of the embedded `role` ("target" or "draft") in `quant`, exported (and quantized)
    on the first call, and its metadata (vocab_size, num_layers, num_kv_heads, head_dim, name, counts).
    A cache hit loads no model. Older exports of the role are removed when a new one
    is made, and older stored forms of it when a new one is."""
    root = cache_root() / "onnx"
    entry = root / f"{role}-{_cache_key(role)}"
    meta_path, fp32 = entry / "meta.json", entry / "fp32.onnx"
    if not (meta_path.is_file() and fp32.is_file()):
        from specviz.export.onnxgraph import export_onnx, shape_of  # torch and the models: only here

        for old in root.glob(f"{role}-*"):
            shutil.rmtree(old, ignore_errors=True)
        entry.mkdir(parents=True, exist_ok=True)
        say(f"exporting the {role} to ONNX with its KV cache ({'~90 s' if role == 'target' else '~10 s'}, once)")
        lm = _load(role)
        _write_atomic(lambda p: export_onnx(lm, p), fp32)
        layers, kv_heads, head_dim = shape_of(lm)
        meta = {"vocab_size": lm.vocab_size, "num_layers": layers, "num_kv_heads": kv_heads, "head_dim": head_dim}
        meta_path.write_text(json.dumps({**meta, "name": lm.name}))
    if quant == "fp32":
        return fp32, {**json.loads(meta_path.read_text()), "counts": {}}
    stem = f"{quant}-{_code('quantize.py')}"
    out, counts_path = entry / f"{stem}.onnx", entry / f"{stem}.json"
    if not (out.is_file() and counts_path.is_file()):
        for old in entry.glob(f"{quant}-*"):
            old.unlink(missing_ok=True)
        say(f"storing the {role}'s weights in {quant}")
        counts: dict = {}
        _write_atomic(lambda p: counts.update(quantize(fp32, p, quant)), out)
        counts_path.write_text(json.dumps(counts))
    return out, {**json.loads(meta_path.read_text()), "counts": json.loads(counts_path.read_text())}


def _token_map() -> tuple[list[int], int]:
    """The target id of each draft id that the draft may propose, and the draft's unk id (its last, which
    stands for every target token outside its vocabulary: only ever an input)."""
    raw = json.loads((DRAFT_DIR / "token_map.json").read_text(encoding="utf-8"))
    return [int(i) for i in raw["target_ids"]], int(raw["unk"])


def _tokenizer(dst: Path) -> dict:
    """Copy the target's tokenizer files into dst; returns tokenizer_config with `chat_template` in it."""
    src = converted_dir(default_gguf_path())
    dst.mkdir(parents=True)
    shutil.copyfile(src / "tokenizer.json", dst / "tokenizer.json")
    config = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    template = src / "chat_template.jinja"  # transformers 5 saves the template beside the config
    if "chat_template" not in config and template.is_file():
        config["chat_template"] = template.read_text(encoding="utf-8")
    (dst / "tokenizer_config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    return config


def _generation() -> tuple[list[int], int | None]:
    """The target's end-of-sequence ids and pad id, from its generation config."""
    src = converted_dir(default_gguf_path())
    gen = json.loads((src / "generation_config.json").read_text(encoding="utf-8"))
    eos = gen.get("eos_token_id")
    eos_ids = [] if eos is None else [int(e) for e in (eos if isinstance(eos, list) else [eos])]
    pad = gen.get("pad_token_id")
    return eos_ids, None if pad is None else int(pad)


def _specviz_version() -> str:
    try:
        return str(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _copy_assets(dst: Path) -> None:
    """Every file under specviz/assets/live (vendor/ too), dotfiles and dot-folders skipped."""
    if LIVE_ASSETS.is_dir():
        shutil.copytree(
            LIVE_ASSETS, dst, ignore=lambda _, names: [n for n in names if n.startswith(".")], dirs_exist_ok=True
        )


def _fill(tmp: Path, quant: str, say: Callable[[str], None]) -> None:
    """Write the whole folder into tmp."""
    _copy_assets(tmp)
    (tmp / "models").mkdir(exist_ok=True)
    manifest: dict = {"version": MANIFEST_VERSION}
    for role in ROLES:
        stored = DRAFT_QUANT[quant] if role == "draft" else quant
        path, meta = cached_model(role, stored, say)
        shutil.copyfile(path, tmp / "models" / f"{role}.onnx")
        entry = {
            "file": f"models/{role}.onnx",
            **{k: meta[k] for k in ("vocab_size", "num_layers", "num_kv_heads", "head_dim", "name")},
            "quant": stored,
            "bytes": path.stat().st_size,
        }
        if role == "draft":
            token_map, unk = _token_map()
            if not len(token_map) == unk == meta["vocab_size"] - 1:
                raise ExportError(
                    f"the draft's token map ({len(token_map)} ids, unk {unk}) does not fit its {meta['vocab_size']} "
                    "outputs; retrain the draft (python -m specviz.train train)"
                )
            entry |= {"token_map": token_map, "unk_id": unk}
        manifest[role] = entry
    config = _tokenizer(tmp / "tokenizer")
    eos, pad = _generation()
    from importlib.metadata import version

    manifest |= {
        "eos_token_ids": eos,
        "pad_token_id": pad,
        "chat_template": config.get("chat_template"),
        "specviz_version": _specviz_version(),
        "versions": {**library_versions(), "onnx": version("onnx"), "onnxruntime": version("onnxruntime")},
        "exported_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


def write_bundle(out: Path, quant: str = DEFAULT_QUANT, say: Callable[[str], None] = print) -> int:
    """Write the folder (see the module docstring) at `out`, replacing an earlier export there;
    returns its size in bytes. Raises ExportError when `out` cannot be written (then nothing is left
    behind), and specviz.models.presets.ModelLoadError when the embedded pair is missing."""
    if quant not in QUANTS:
        raise ExportError(f"unknown --quant {quant!r}; choose one of {', '.join(QUANTS)}")
    out = out.expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; give a folder name")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise ExportError(
            f"{out} is a folder that holds other files; give a new or empty folder (or an earlier export)"
        )
    if not out.parent.is_dir():
        raise ExportError(f"the folder {out.parent} does not exist; create it or choose another -o")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise ExportError(f"cannot write in {out.parent}: {exc.strerror or exc}") from exc
    old = out.parent / f".{out.name}.old"
    try:
        _fill(tmp, quant, say)
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the folder from a web server running as another user
        shutil.rmtree(old, ignore_errors=True)
        if out.exists():
            out.rename(old)
        try:
            tmp.rename(out)
        except OSError:
            if old.exists():  # put the earlier export back
                old.rename(out)
            raise
    except OSError as exc:
        raise ExportError(f"{out} could not be written: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return folder_bytes(out)
