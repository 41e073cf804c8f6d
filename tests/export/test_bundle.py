"""specviz/export/bundle.py and `python -m specviz export-live`: the folder, its manifest, clean failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specviz.cli.commands import main
from specviz.export import bundle
from specviz.export.bundle import DRAFT_QUANT, LIVE_ASSETS, ExportError, write_bundle
from specviz.export.quantize import DEFAULT_QUANT

pytestmark = pytest.mark.slow

KEYS = {"file", "vocab_size", "num_layers", "num_kv_heads", "head_dim", "name", "quant", "bytes"}


def test_the_folder_holds_models_tokenizer_manifest_and_page(live_dir: Path, capsys: pytest.CaptureFixture[str]):
    manifest = json.loads((live_dir / "manifest.json").read_text())
    assert manifest["version"] == 1
    for role, layers, vocab in (("target", 30, 49152), ("draft", 2, 8192)):
        entry = manifest[role]
        assert set(entry) >= KEYS
        quant = DRAFT_QUANT[DEFAULT_QUANT] if role == "draft" else DEFAULT_QUANT
        assert (entry["num_layers"], entry["vocab_size"], entry["quant"]) == (layers, vocab, quant)
        assert (live_dir / entry["file"]).stat().st_size == entry["bytes"]
    draft = manifest["draft"]
    assert len(draft["token_map"]) == draft["unk_id"] == 8191  # every draft id but unk, the last
    assert (manifest["target"]["num_kv_heads"], manifest["target"]["head_dim"]) == (3, 64)
    assert manifest["eos_token_ids"] == [2] and manifest["pad_token_id"] == 2
    config = json.loads((live_dir / "tokenizer" / "tokenizer_config.json").read_text())
    assert config["chat_template"] == manifest["chat_template"] and "<|im_start|>" in manifest["chat_template"]
    assert (live_dir / "tokenizer" / "tokenizer.json").is_file()
    assert {"specviz_version", "versions", "exported_at"} <= set(manifest)
    # the page: every file of specviz/assets/live, dotfiles left out
    page = {p.relative_to(LIVE_ASSETS) for p in LIVE_ASSETS.rglob("*") if p.is_file()}
    page = {p for p in page if not any(part.startswith(".") for part in p.parts)}
    assert all((live_dir / p).is_file() for p in page)
    assert sum(p.stat().st_size for p in live_dir.rglob("*") if p.is_file()) < 200e6
    assert not list(live_dir.parent.glob(".site*"))  # no scratch folder left beside it


def test_a_second_export_replaces_the_first_in_seconds(live_dir: Path, capsys: pytest.CaptureFixture[str]):
    (live_dir / "stale.txt").write_text("from before")
    assert main(["export-live", "-o", str(live_dir)]) == 0
    assert not (live_dir / "stale.txt").exists() and (live_dir / "manifest.json").is_file()
    out = capsys.readouterr().out
    assert "written (" in out and "MB" in out and "exporting" not in out  # from the cache


def test_a_failed_export_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target_onnx: Path, capsys: pytest.CaptureFixture[str]
):
    def broken(dst: Path) -> dict:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle, "_tokenizer", broken)
    assert main(["export-live", "-o", str(tmp_path / "site")]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_folder_of_other_files_is_refused_untouched(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "notes.txt").write_text("mine")
    assert main(["export-live", "-o", str(tmp_path / "site")]) == 1
    assert "holds other files" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "site").iterdir()] == ["notes.txt"]
    with pytest.raises(ExportError, match="does not exist"):
        write_bundle(tmp_path / "no" / "such" / "site")
    with pytest.raises(ExportError, match="unknown --quant"):
        write_bundle(tmp_path / "x", "q3")
