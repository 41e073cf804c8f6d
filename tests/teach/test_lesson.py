"""specviz.teach.lesson and `python -m specviz export`: one HTML file that plays traces offline.

The browser tests open the file from file:// in headless chromium with the network off, step
through it with the keyboard and the chooser, follow a #step= link, and check that hostile token
text shows as typed and runs nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from specviz import figures as fg
from specviz.cli.commands import main
from specviz.teach import lesson
from specviz.trace import load
from tests.browserkit import chromium_page, require_browser
from tests.ui.test_browser_hostile import HOSTILE, IMG, SCRIPT, hostile_trace

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "traces"
GREEDY = SAMPLES / "greedy.json.gz"


def test_the_file_holds_everything_and_forbids_the_network(tmp_path: Path) -> None:
    size = lesson.write_lesson([("greedy", load(GREEDY))], tmp_path / "l.html")
    text = (tmp_path / "l.html").read_text(encoding="utf-8")
    assert size == len(text.encode())
    csp = text.split('http-equiv="Content-Security-Policy" content="', 1)[1].split('"', 1)[0]
    assert csp.startswith("default-src 'none';") and "connect-src 'none'" in csp
    # script: only the file's own three blocks, by hash (an injected <script> could not run)
    assert csp.count("'sha256-") == 3 and "script-src 'unsafe-inline'" not in csp
    assert "window.Plotly = Plotly" in text and "function specvizPlayer" in text
    assert "<script src" not in text and "<link" not in text  # nothing to fetch


def test_hostile_names_cannot_leave_their_script(tmp_path: Path) -> None:
    name = "</script><script>window.__pwned=1</script>"
    text = lesson.lesson_html([(name, hostile_trace())], title=name)
    assert text.count("<script>") == 3 and text.count("</script>") == 3  # Plotly, the player, the boot
    assert "<title>&lt;/script&gt;" in text


def test_names_are_shown_not_applied_and_the_file_is_readable(tmp_path: Path) -> None:
    rlo = "\u202e"
    old = os.umask(0o022)
    try:
        lesson.write_lesson([(f"{rlo}lmth.exe", load(GREEDY))], tmp_path / "l.html")
    finally:
        os.umask(old)
    text = (tmp_path / "l.html").read_text(encoding="utf-8")
    assert rlo not in text.split("<script>", 1)[0] and "\\u202elmth.exe" in text.split("<script>", 1)[0]
    assert (tmp_path / "l.html").stat().st_mode & 0o777 == 0o644  # a web server's user can read it


def test_a_failed_write_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        lesson.write_lesson([("greedy", load(GREEDY))], tmp_path / "l.html")
    assert list(tmp_path.iterdir()) == []


def test_export_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lesson.html"
    assert main(["export", str(GREEDY), str(SAMPLES / "tree-greedy.json.gz"), "-o", str(out)]) == 0
    assert "lesson file written" in capsys.readouterr().out and out.stat().st_size > 1_000_000
    broken = Path(__file__).parents[1] / "data" / "broken" / "negative_q.json"
    assert main(["export", str(broken), "-o", str(tmp_path / "b.html")]) == 1
    assert "not exported" in capsys.readouterr().err and not (tmp_path / "b.html").exists()
    assert main(["export", str(GREEDY), "-o", str(tmp_path / "no" / "l.html")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_no_traces_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one trace"):
        lesson.lesson_html([])


# ---------------------------------------------------------------- in the browser, from file://


@pytest.fixture(scope="module")
def lesson_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lesson") / "lesson.html"
    lesson.write_lesson([(IMG, hostile_trace()), ("greedy", load(GREEDY))], path, title=SCRIPT)
    return path


@pytest.mark.browser
def test_offline_stepping_keys_links_and_hostile_text(lesson_file: Path) -> None:
    require_browser()
    with chromium_page() as pg:
        pg.context.set_offline(True)
        requests: list[str] = []
        dialogs: list[str] = []
        errors: list[str] = []
        pg.on("request", lambda r: requests.append(r.url))
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.on("pageerror", lambda e: errors.append(str(e)))
        url = lesson_file.as_uri()
        pg.goto(url)
        pg.wait_for_selector(".svz[data-step='0'] .svz-current .svz-acceptance .main-svg")
        shown = pg.inner_text(".svz")
        for attack in HOSTILE:  # as typed (the bidi override as an escape), in the words and the table
            assert fg.visible(attack) in shown
        assert pg.evaluate("window.__pwned") is None and dialogs == []
        assert pg.locator(".svz script, .svz img, .svz a").count() == 0
        assert pg.title() == SCRIPT
        n = pg.evaluate("document.querySelectorAll('.svz-chooser option').length")
        assert n == 2
        pg.keyboard.press("ArrowRight")
        pg.wait_for_selector(".svz[data-step='1']")
        assert pg.evaluate("window.location.hash") == "#trace=0&step=1"  # two traces: the link names which
        pg.keyboard.press("End")
        last = json.loads(pg.evaluate("JSON.stringify(document.querySelector('.svz-slider').max)"))
        pg.wait_for_selector(f".svz[data-step='{last}']")
        pg.keyboard.press("Home")
        pg.wait_for_selector(".svz[data-step='0']")
        pg.select_option(".svz-chooser", "1")  # the second trace: the greedy sample
        pg.wait_for_selector(".svz-current .svz-heading")
        pg.wait_for_function(
            "document.querySelector('.svz-current .svz-heading').textContent.endsWith('of 40 (numbered from 0)')"
        )
        pg.click("text=Next ▶")
        pg.wait_for_selector(".svz[data-step='1']")
        # a link to a step opens there; with several traces the link names the trace too
        pg.goto(url + "#trace=1&step=2")
        pg.reload()
        pg.wait_for_selector(".svz[data-step='2'] .svz-current .svz-timeline .main-svg")
        assert pg.evaluate("document.querySelector('.svz-chooser').value") == "1"
        pg.evaluate("window.location.hash = 'trace=1&step=5'")  # a link within the open file
        pg.wait_for_selector(".svz[data-step='5']")
        # keys faster than drawing: the step where they stop is drawn whole, old steps are let go
        for _ in range(8):
            pg.keyboard.press("ArrowRight")
            pg.wait_for_timeout(60)
        pg.wait_for_selector(".svz[data-step='13']")
        pg.wait_for_function(
            "[...document.querySelectorAll('.svz-current .svz-plot')]"
            ".every(d => d.style.display === 'none' || d.querySelector('.main-svg'))"
        )
        assert pg.evaluate("document.querySelectorAll('.svz-frame').length") <= 4
        assert errors == []
        assert all(r.startswith("file://") for r in requests), requests
