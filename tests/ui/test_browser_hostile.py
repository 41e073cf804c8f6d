"""Hostile text in a real browser: upload traces whose tokens are markup, script, Markdown, LaTeX and
bidi overrides; the page must show them as typed, and nothing may run.

Like tests/ui/test_browser.py: `streamlit run app.py` on a free loopback port, Debian's chromium via
Playwright; skips without them on a developer machine, fails when CI is set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browserkit import ARTIFACTS, chromium_page, require_browser, serve_app, settle

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

BASE: dict[str, Any] = json.loads((Path(__file__).parents[1] / "data" / "valid" / "tiny.json").read_text())
RLO = "\u202e"
# no spaces, so the page shows them character for character (a space in a token is drawn as ␣)
SCRIPT = "<script>window.__pwned=1;alert(1)</script>"
IMG = "<img/src=x/onerror=window.__pwned=1;alert(1)>"
MARKDOWN = "**bold**[link](javascript:alert(1))$x^2$"
BIDI = f"{RLO}gnp.exe"
HOSTILE = [SCRIPT, IMG, MARKDOWN, BIDI]


@pytest.fixture(scope="module", autouse=True)
def _browser_available() -> None:
    require_browser()


def hostile_trace() -> dict[str, Any]:
    """The committed tiny trace with every token's text replaced by an attack (ids unchanged: still valid)."""
    t = copy.deepcopy(BASE)
    ids = sorted({d["token_id"] for s in t["steps"] for d in s["draft"]} | {s["next"]["token_id"] for s in t["steps"]})
    text = {tid: HOSTILE[i % len(HOSTILE)] for i, tid in enumerate(ids)}

    def fix(x: Any) -> None:
        if isinstance(x, dict):
            if "token_id" in x and "token" in x:
                x["token"] = text.get(x["token_id"], x["token"])
            for v in x.values():
                fix(v)
        elif isinstance(x, list):
            for v in x:
                fix(v)

    fix(t["steps"])
    first = t["steps"][0]  # step 0, shown first, gets one of each in its words
    for d, attack in zip(first["draft"], HOSTILE, strict=False):
        d["token"] = attack
    first["next"]["token"] = HOSTILE[-1]
    t["prompt"]["text"] = " ".join(HOSTILE)
    t["output"]["text"] = "".join(text[i] for i in t["output"]["token_ids"])
    return t


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_app(
        tmp_path_factory.mktemp("log"), {"SPECVIZ_SAMPLES": str(tmp_path_factory.mktemp("no-samples"))}
    ) as url:
        yield url


@pytest.fixture(scope="module")
def browser_page(server: str) -> Iterator[tuple[Page, list[str]]]:
    with chromium_page(height=1400) as pg:
        dialogs: list[str] = []
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        yield pg, dialogs


def nothing_ran(pg: Page, dialogs: list[str]) -> None:
    assert dialogs == [], dialogs
    assert pg.evaluate("() => typeof window.__pwned") == "undefined"
    assert pg.locator("img[src='x']").count() == 0
    assert pg.locator("a[href^='javascript']").count() == 0
    assert pg.evaluate("() => [...document.scripts].filter(s => s.text.includes('__pwned')).length") == 0


def page_text(pg: Page) -> str:
    """What the page shows in words: Streamlit's text, and the step-through player's current step."""
    shown = "[data-testid='stMarkdownContainer'], [data-testid='stText'], .svz-top, .svz-current"
    return "\n".join(pg.locator(shown).all_inner_texts())


def test_hostile_trace_is_shown_literally_and_nothing_runs(server, browser_page, tmp_path):
    from playwright.sync_api import expect

    pg, dialogs = browser_page
    path = tmp_path / "evil.json"
    path.write_text(json.dumps(hostile_trace(), ensure_ascii=False), encoding="utf-8")
    pg.goto(f"{server}/replay")
    settle(pg)
    pg.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))
    n = len(BASE["steps"])
    expect(pg.get_by_role("heading", name=f"Step 0 of {n} ")).to_be_visible()
    settle(pg)
    pg.get_by_role("button", name="Next").click()
    expect(pg.get_by_role("heading", name=f"Step 1 of {n} ")).to_be_visible()
    settle(pg)
    pg.wait_for_timeout(1000)  # let Plotly draw

    text = page_text(pg)
    for attack in (SCRIPT, IMG, "**bold**[link](javascript:alert(1))$x^2$"):
        assert attack in text, f"{attack!r} is not shown as typed"
    assert "\\u202egnp.exe" in text and RLO not in text  # the bidi override is visible, not applied
    # Plotly: the labels and hovers show the text too (HTML-escaped, so SVG text, never elements)
    svg = pg.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')].map(e => e.textContent).join(' ')")
    assert "<script>" in svg and "<img/src" in svg and RLO not in svg
    timeline = pg.locator(".svz-current .svz-timeline").first
    timeline.scroll_into_view_if_needed()
    marker = timeline.locator(".scatterlayer .trace .points path").first
    marker.hover(force=True)
    pg.wait_for_timeout(500)
    nothing_ran(pg, dialogs)
    pg.screenshot(path=str(ARTIFACTS / "hostile-replay.png"), full_page=True)

    pg.goto(f"{server}/stats")
    settle(pg)
    nothing_ran(pg, dialogs)


def test_hostile_event_log_is_shown_literally_and_nothing_runs(server, browser_page, tmp_path):
    from playwright.sync_api import expect

    pg, dialogs = browser_page
    path = tmp_path / f"{RLO}log<b>.csv"
    rows = ["step,position,draft_token,q,p,accepted,next_token,draft_ms,verify_ms"]
    rows += [
        f'0,0,"{SCRIPT}",0.5,0.6,true,"{IMG}",1,2',
        f'0,1,"{MARKDOWN}",0.5,0.1,false,"{IMG}",1,2',
        f'1,0,"{BIDI}",0.4,0.5,true,"{SCRIPT}",1,2',
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    pg.goto(f"{server}/replay")
    settle(pg)
    pg.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))
    expect(pg.get_by_role("heading", name="Step 0 of 2 ")).to_be_visible()
    settle(pg)
    expect(pg.get_by_text("Imported from an event log").first).to_be_visible()
    text = page_text(pg)
    assert SCRIPT in text and MARKDOWN in text and RLO not in text
    nothing_ran(pg, dialogs)
    pg.screenshot(path=str(ARTIFACTS / "hostile-eventlog.png"), full_page=True)


def test_hostile_upload_errors_are_text_too(server, browser_page, tmp_path):
    from playwright.sync_api import expect

    pg, dialogs = browser_page
    path = tmp_path / "bad.csv"
    path.write_text(f"step,position,draft_token,accepted\n0,0,{IMG},perhaps{SCRIPT}\n", encoding="utf-8")
    pg.goto(f"{server}/replay")
    settle(pg)
    pg.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))
    expect(pg.get_by_text("Could not open this upload")).to_be_visible()
    assert "line 2, column accepted" in page_text(pg)
    nothing_ran(pg, dialogs)


ENGINES = Path(__file__).parents[1] / "data" / "engines"


def test_engine_statistics_are_read_and_shown_literally(server, browser_page, tmp_path):
    """A serving engine's run summary on the Statistics page; hostile names and broken files stay text."""
    from playwright.sync_api import expect

    pg, dialogs = browser_page
    path = tmp_path / f"{RLO}vllm<b>{SCRIPT[:8]}.log"
    path.write_bytes((ENGINES / "vllm_specdecode.log").read_bytes())
    pg.goto(f"{server}/stats")
    settle(pg)
    expect(pg.get_by_text("Statistics from a serving engine")).to_be_visible()
    pg.locator("[data-testid='stFileUploaderDropzoneInput']").last.set_input_files(str(path))
    expect(pg.get_by_text("A run summary: totals, not steps.").first).to_be_visible()
    settle(pg)
    text = page_text(pg)
    assert "61.7%" in text and "Missing: no per-token p or q" in text and "vllm<b><script" in text
    assert RLO not in text
    expect(pg.get_by_text("share of drafting steps").first).to_be_visible()
    nothing_ran(pg, dialogs)
    pg.screenshot(path=str(ARTIFACTS / "engine-stats.png"), full_page=True)
    bad = tmp_path / "bad.log"
    bad.write_text(f"SpecDecoding metrics: Mean acceptance length: {SCRIPT}, Accepted: 1 tokens\n", encoding="utf-8")
    pg.locator("[data-testid='stFileUploaderDropzoneInput']").last.set_input_files(str(bad))
    expect(pg.get_by_text("Could not read this file as an engine's statistics").first).to_be_visible()
    nothing_ran(pg, dialogs)
    # the trace picker's own uploader says where a run summary belongs instead of failing as a trace
    pg.goto(f"{server}/replay")
    settle(pg)
    pg.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        str(ENGINES / "sglang_generate.json")
    )
    expect(pg.get_by_text("is a run summary from sglang").first).to_be_visible()
    nothing_ran(pg, dialogs)
