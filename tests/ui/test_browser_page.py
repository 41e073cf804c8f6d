"""The Live in your browser page (specviz/ui/browser.py): without the exported folder it says how to make it
and offers the export; with it, it embeds the static page from Streamlit's static serving."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from specviz.run import exportjob
from specviz.ui import browser
from tests.apptestkit import button, ok, open_page


@pytest.fixture(autouse=True)
def _visitor_on_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on the server's own machine (Streamlit gives localhost no IP address; AppTest gives a mock)."""
    import streamlit as st

    monkeypatch.setattr(type(st.context), "ip_address", property(lambda _: None))


def _complete(folder: Path) -> None:
    for name in (*exportjob.NEEDED, "models/t.onnx", "models/d.onnx"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    (folder / "manifest.json").write_text(
        json.dumps({"target": {"file": "models/t.onnx"}, "draft": {"file": "models/d.onnx"}})
    )


def test_without_the_folder_the_page_says_how_to_make_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(browser, "LIVE", tmp_path / "live")
    at = open_page("pages/browser.py")
    assert "python -m specviz export-live -o static/live" in at.info[0].value
    assert button(at, "Export the models now").disabled is False
    assert not at.get("iframe")


def test_a_visitor_from_another_machine_is_not_offered_the_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Newcomer review: any student on a class's server could start a minutes-long export of the models."""
    import streamlit as st

    monkeypatch.setattr(browser, "LIVE", tmp_path / "live")
    monkeypatch.setattr(type(st.context), "ip_address", property(lambda _: "192.0.2.7"))
    at = open_page("pages/browser.py")
    assert "python -m specviz export-live -o static/live" in at.info[0].value
    assert not [b for b in at.button if b.label == "Export the models now"]
    assert "Ask whoever runs this server" in at.caption[0].value


def test_the_export_button_runs_the_export_and_then_embeds_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "live"
    monkeypatch.setattr(browser, "LIVE", folder)
    fake = "import sys, pathlib; sys.path.insert(0, sys.argv[2]); from tests.ui.test_browser_page import _complete; "
    fake += "_complete(pathlib.Path(sys.argv[1])); print('exported')"
    root = str(Path(__file__).resolve().parents[2])
    job = exportjob.ExportJob(folder.resolve(), [sys.executable, "-c", fake, "{out}", root])
    monkeypatch.setitem(exportjob._JOBS, folder.resolve(), job)
    at = open_page("pages/browser.py")
    ok(button(at, "Export the models now").click().run())
    deadline = time.monotonic() + 30
    while job.state().status == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job.state().status == "done", job.state()
    ok(at.run())
    frames = at.get("iframe")
    assert len(frames) == 1 and frames[0].proto.src == "/app/static/live/index.html"


def test_a_failed_export_is_said_in_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "live"
    monkeypatch.setattr(browser, "LIVE", folder)
    job = exportjob.ExportJob(folder.resolve(), [sys.executable, "-c", "print('out of memory'); raise SystemExit(1)"])
    monkeypatch.setitem(exportjob._JOBS, folder.resolve(), job)
    assert job.start()
    while job.state().status == "running":
        time.sleep(0.05)
    at = open_page("pages/browser.py")
    assert "out of memory" in at.error[0].value and "did not finish" in at.error[0].value
    assert not at.exception


def test_with_the_folder_the_page_is_embedded_under_the_base_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _complete(tmp_path / "live")
    monkeypatch.setattr(browser, "LIVE", tmp_path / "live")
    at = open_page("pages/browser.py")
    assert at.get("iframe")[0].proto.src == "/app/static/live/index.html"
    assert "Open the page on its own" in at.caption[0].value
    monkeypatch.setattr(browser.st, "get_option", lambda key: "/class/" if key == "server.baseUrlPath" else None)
    assert browser.page_url() == "/class/app/static/live/index.html"
