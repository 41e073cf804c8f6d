"""End to end in real headless Chromium: `streamlit run app.py`, deep link, stepping, clicks, uploads.

Needs Debian's chromium at /usr/bin/chromium and Playwright for Python (`make test` installs both).
Skips when either is missing on a developer machine; fails when CI is set. Screenshots go to
artifacts/ (gitignored), which CI can keep.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from specviz.trace import Trace, dump, load
from specviz.ui import traces
from tests.browserkit import ARTIFACTS, chromium_page, require_browser, serve_app, settle

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", autouse=True)
def _browser_available() -> None:
    require_browser()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_trace: Trace) -> Iterator[str]:
    """The app on a free port, with the real samples plus a small deterministic one called "tiny"."""
    samples = tmp_path_factory.mktemp("samples")
    for path in traces.list_samples().values():
        shutil.copy(path, samples / path.name)
    dump(tiny_trace, samples / "tiny.json.gz")
    dump(wide_trace(tiny_trace), samples / "wide.json.gz")
    with serve_app(tmp_path_factory.mktemp("log"), {"SPECVIZ_SAMPLES": str(samples)}) as url:
        yield url


def wide_trace(tiny: Trace) -> Trace:
    """Hostile widths: a 500-character token with no space in it, and a prompt of 2,000 words."""
    t = copy.deepcopy(tiny)
    t["prompt"]["text"] = " ".join(f"w{i}" for i in range(2000))
    for step in t["steps"][:3]:
        for d in step["draft"][: step["n_accepted"]]:
            d["token"] = "Ω" * 500
    return t


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Page]:
    with chromium_page() as pg:
        yield pg


RERUNS = """() => { window.__reruns = 0;
  const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => { if (app.getAttribute("data-test-script-state") === "running") window.__reruns++; })
    .observe(app, {attributes: true, attributeFilter: ["data-test-script-state"]}); }"""


def test_deep_link_then_next_keys_timeline_and_play_without_a_rerun(server, page, tiny_trace):
    from playwright.sync_api import expect

    n = len(tiny_trace["steps"])
    # the first request this server sees is a deep link: it must still get app.py's routing
    page.goto(f"{server}/replay?trace=tiny&step=3")
    settle(page)
    expect(page.get_by_role("heading", name=f"Step 3 of {n} ")).to_be_visible()
    expect(page.get_by_text("Step through", exact=True).first).to_be_visible()  # the sidebar's page title
    expect(page.locator(".svz-current .svz-timeline .main-svg").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "replay-step3.png"), full_page=True)
    page.evaluate(RERUNS)  # from here on, stepping happens in the browser: the script must not run again

    page.get_by_role("button", name="Next ▶").click()
    expect(page.get_by_role("heading", name=f"Step 4 of {n} ")).to_be_visible()
    expect(page).to_have_url(re.compile(r"step=4"))
    expect(page.locator(".svz-current .svz-acceptance .main-svg").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "replay-step4.png"), full_page=True)

    # the arrow keys step too (focus on the page body, not in a widget)
    page.get_by_role("heading", name=f"Step 4 of {n} ").click()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("heading", name=f"Step 5 of {n} ")).to_be_visible()
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("heading", name=f"Step 4 of {n} ")).to_be_visible()
    page.keyboard.press("End")
    expect(page.get_by_role("heading", name=f"Step {n - 1} of {n} ")).to_be_visible()
    page.keyboard.press("Home")
    expect(page.get_by_role("heading", name=f"Step 0 of {n} ")).to_be_visible()
    page.locator(".svz-slider").fill("4")  # the slider
    expect(page.get_by_role("heading", name=f"Step 4 of {n} ")).to_be_visible()

    # another position's distributions
    radios = page.locator(".svz-current .svz-radio [role=radio]")
    if radios.count() > 1:
        radios.nth(1).click()
        expect(radios.nth(1)).to_have_attribute("aria-checked", "true")

    # click a timeline marker of another step: the step view follows
    timeline = page.locator(".svz-current .svz-timeline").first
    timeline.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    box = timeline.evaluate(
        """(el) => {
            for (const p of el.querySelectorAll('.scatterlayer .trace .points path')) {
                const d = p.__data__;
                if (d && d.y === 1) { const r = p.getBoundingClientRect();
                    return {x: r.x + r.width / 2, y: r.y + r.height / 2}; }
            }
            return null;
        }"""
    )
    assert box is not None, "no timeline marker for step 1"
    page.mouse.click(box["x"], box["y"])
    expect(page.get_by_role("heading", name=f"Step 1 of {n} ")).to_be_visible()
    expect(page).to_have_url(re.compile(r"step=1"))

    # play steps on its own until paused
    page.get_by_role("button", name="Play").click()
    expect(page.get_by_role("heading", name=f"Step 2 of {n} ")).to_be_visible(timeout=5000)
    page.get_by_role("button", name="Pause").click()
    assert page.evaluate("window.__reruns") == 0


def test_the_step_through_page_fetches_nothing_from_outside(server, page):
    """The player's Plotly.js comes from this server's static folder; the page icon is a local file
    (a Material icon name made every browser ask fonts.gstatic.com for it)."""
    requests: list[str] = []

    def seen(r) -> None:
        requests.append(r.url)

    page.on("request", seen)
    try:
        page.goto(f"{server}/replay?trace=tiny&step=1")
        settle(page)
        page.wait_for_selector(".svz[data-step='1'] .svz-current .svz-timeline .main-svg")
    finally:
        page.remove_listener("request", seen)
    assert any("/app/static/plotly-" in r for r in requests) or page.evaluate("!!window.__svzPlotly")
    outside = [r for r in requests if not r.startswith((server, "data:", "blob:"))]
    assert outside == []


def test_upload_valid_and_broken_traces(server, page, tiny_trace, tmp_path):
    from playwright.sync_api import expect

    good = tmp_path / "uploaded.json"
    dump(tiny_trace, good)
    page.goto(f"{server}/replay")
    settle(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(good))
    expect(page.get_by_role("combobox", name="Trace")).to_match_aria_snapshot(
        '- combobox "Trace": Upload · uploaded.json'
    )
    expect(page.get_by_role("heading", name=f"Step 0 of {len(tiny_trace['steps'])} ")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "replay-upload.png"), full_page=True)

    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "specviz-trace", "version": 1, "steps": [')
    page.goto(f"{server}/replay")
    settle(page)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(broken))
    expect(page.get_by_text("Could not open this upload")).to_be_visible()
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "replay-broken-upload.png"), full_page=True)


@pytest.mark.parametrize(("path", "title"), [("", "Speculative decoding"), ("stats", "Statistics"), ("live", "Live")])
def test_other_pages_render(server, page, path, title):
    from playwright.sync_api import expect

    page.goto(f"{server}/{path}")
    settle(page)
    expect(page.get_by_role("heading", name=re.compile(title)).first).to_be_visible()
    if path != "live":
        expect(page.locator(".js-plotly-plot").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / f"page-{path or 'home'}.png"), full_page=True)


@pytest.mark.parametrize(
    ("name", "path"),
    [("home", ""), ("replay", "replay?trace=sampling-t0.7&step=36"), ("stats", "stats?trace=long")],
)
def test_real_samples_in_the_browser(server, page, name, path):
    """The shipped samples render in a real browser; the screenshots are the ones docs/APP.md shows."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1500 if name != "home" else 950})
    page.goto(f"{server}/{path}")
    settle(page)
    expect(page.locator(".js-plotly-plot").first).to_be_visible()
    page.wait_for_timeout(1000)  # let Plotly finish drawing before the picture
    page.screenshot(path=str(ARTIFACTS / f"docs-{name}.png"))
    page.set_viewport_size({"width": 1440, "height": 1100})


def test_the_feature_draft_is_explained_in_the_browser(server, page):
    """The words for the feature draft render where the pair is shown: the Live page's preset and Replay."""
    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1100})
    page.goto(f"{server}/replay?trace=feature-greedy&step=3")
    settle(page)
    words = page.get_by_text("Feature draft", exact=False).first
    expect(words).to_be_visible()
    assert "hidden state" in words.inner_text()
    page.screenshot(path=str(ARTIFACTS / "feature-replay.png"))
    page.goto(f"{server}/live")
    settle(page)
    expect(page.get_by_text("Feature draft", exact=False)).to_have_count(0)  # the default is the standalone draft
    page.get_by_test_id("stSelectbox").first.click()
    page.get_by_role("option", name=re.compile("feature draft")).click()
    settle(page)
    expect(page.get_by_text("Feature draft", exact=False).first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "feature-live.png"))


def test_the_live_page_reports_speed_measured_the_way_it_says(server, page, tmp_path):
    """The Live page's speeds come from the timings it records in the trace (meta.timing), as its words say:
    model time = the sum of the decoder's step timings; speed = tokens / wall time of the decode loop; the
    measured speedup = that speed / the evaluation model alone's, timed the same way."""
    import json

    from playwright.sync_api import expect

    page.set_viewport_size({"width": 1440, "height": 1100})
    page.goto(f"{server}/live")
    settle(page)
    page.get_by_label("Max new tokens").fill("16")
    page.get_by_label("Max new tokens").press("Enter")
    # the comparison with the evaluation model alone is on by default: a run says faster or slower, and why
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("Speculative decoding was").first).to_be_visible(timeout=300_000)
    settle(page)
    body = page.inner_text("body")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download the trace (JSON)").click()
    path = tmp_path / "run.json"
    info.value.save_as(path)
    trace = json.loads(path.read_text())
    timing = trace["meta"]["timing"]
    steps_ms = sum(s["timing_ms"]["draft"] + s["timing_ms"]["verify"] for s in trace["steps"])
    assert abs(timing["model_ms"] - steps_ms) <= 1e-6 * max(1.0, steps_ms)
    tokens = len(trace["output"]["token_ids"])
    assert timing["tokens"] == tokens and timing["wall_ms"] >= timing["model_ms"] * 0.99
    speed = tokens / (timing["wall_ms"] / 1e3)
    base = timing["baseline"]
    alone = base["tokens"] / (base["wall_ms"] / 1e3)
    assert f"Speculative output · {speed:.1f} tok/s" in body
    assert f"Evaluation model alone · {alone:.1f} tok/s" in body
    assert f"gives {tokens / (timing['model_ms'] / 1e3):.1f} tok/s" in body
    assert f"Speculative decoding was {speed / alone:.2f}× the evaluation model alone" in body
    assert "a one-token pass here (measured)" in body and "ideal (formula" in body
    page.screenshot(path=str(ARTIFACTS / "live-result.png"), full_page=True)


LAYOUT_PAGES = [
    "",
    "live",
    "replay?trace=sampling-t0.7&step=3",
    "replay?trace=tree-sampling&step=2",
    "stats?trace=sampling-t0.7",
    "exercises",
    "speedup",
    "compare",
]


@pytest.mark.parametrize(
    ("present", "width", "height"),
    [(False, 1440, 1000), (True, 1440, 1000), (True, 1280, 720)],
    ids=["normal", "presentation", "presentation-1280x720"],
)
def test_no_label_is_cut_off(server, page, present, width, height):
    """Public report: the preset select, "Adapt γ ea…", "F‥ Home", "mean p of a…" and other labels cut off;
    inside the charts, the Statistics axis titles and neighbouring panels' tick labels ("1 0"). And on a
    small projector's screen (1280×720) in presentation mode: "Presentati…"."""
    from tests.browserkit import chart_text_problems, clipped_text

    page.set_viewport_size({"width": width, "height": height})
    found = {}
    for path in LAYOUT_PAGES:
        sep = "&" if "?" in path else "?"
        page.goto(f"{server}/{path}{sep + 'present=1' if present else ''}")
        settle(page, 1000)
        if clipped_text(page) + chart_text_problems(page):
            # measured again once the charts have surely drawn at their final width: in one full run (of four)
            # Compare's charts were measured mid-resize, their labels still piled up at the narrow width
            page.wait_for_timeout(1500)
            if cut := clipped_text(page) + chart_text_problems(page):
                found[path] = cut
    assert found == {}


def test_presentation_mode_enlarges_charts_and_keeps_slider_values_off_their_labels(server, page):
    """Public report: presentation mode enlarged the prose but not the charts; slider values sat on the track."""
    page.set_viewport_size({"width": 1440, "height": 1000})
    sizes = {}
    for present in (False, True):
        page.goto(f"{server}/replay?trace=greedy&step=3{'&present=1' if present else ''}")
        settle(page, 1000)
        sizes[present] = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.font.size")
    assert sizes[True] >= 1.5 * sizes[False]
    page.goto(f"{server}/live?present=1")
    settle(page, 1000)
    overlaps = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stSlider"]')].map(s => {
             const v = s.querySelector('[data-testid="stSliderThumbValue"]');
             const l = s.querySelector('[data-testid="stWidgetLabel"]');
             if (!v || !l) return false;
             const a = v.getBoundingClientRect(), b = l.getBoundingClientRect();
             return a.top < b.bottom && b.top < a.bottom && a.left < b.right && b.left < a.right;
           })"""
    )
    assert overlaps and not any(overlaps)


def test_a_tree_step_draws_its_tree_and_attention_mask(server, page):
    """Draft trees: the tree panel and the tree attention mask next to it, with readable labels."""
    from playwright.sync_api import expect

    from tests.browserkit import chart_text_problems

    page.set_viewport_size({"width": 1440, "height": 1000})
    page.goto(f"{server}/replay?trace=tree-sampling&step=1")
    settle(page, 1000)
    expect(page.get_by_text("Tree attention mask").first).to_be_visible()
    names = page.evaluate(
        "() => [...document.querySelectorAll('.js-plotly-plot')].map(p => (p._fullData || []).map(t => t.name).join('|'))"
    )
    assert any("accepted draft" in n for n in names)  # the tree panel's legend
    assert page.locator(".js-plotly-plot .heatmaplayer").count() >= 1  # the mask
    assert chart_text_problems(page) == []
    page.screenshot(path=str(ARTIFACTS / "replay-tree.png"), full_page=True)


@pytest.mark.parametrize("present", [False, True], ids=["normal", "presentation"])
def test_every_step_fits_its_columns_first_middle_and_last(server, page, tiny_trace, present):
    """Public report: from about step 10 the context row never wrapped (3,767 px wide at step 46 of
    sampling-t0.7), squeezing the charts to ~80 px and cutting the table and the words at the right edge.
    Every sample (the 320-step `long` too) and a hostile one, at its first, a middle and its last step."""
    from playwright.sync_api import expect

    from tests.browserkit import chart_text_problems, clipped_text, wider_than_column

    page.set_viewport_size({"width": 1440, "height": 1000})
    names = {name: len(load(path)["steps"]) for name, path in traces.list_samples().items()}
    names["wide"] = len(tiny_trace["steps"])
    found = {}
    for name, n in names.items():
        page.goto(f"{server}/replay?trace={name}&step={n // 2}{'&present=1' if present else ''}")
        settle(page, 700)
        for key, k in ((None, n // 2), ("End", n - 1), ("Home", 0)):
            if key:
                page.locator(".svz-current .svz-heading").first.click()
                page.keyboard.press(key)
            expect(page.locator(".svz-current .svz-heading").first).to_have_text(re.compile(rf"^Step {k} of "))
            page.wait_for_timeout(600)  # the step's figures are drawn one per task after its words
            if problems := wider_than_column(page) + clipped_text(page) + chart_text_problems(page):
                found[f"{name} step {k}"] = problems
        if name in ("long", "wide"):
            page.screenshot(path=str(ARTIFACTS / f"replay-{name}-{'present' if present else 'normal'}.png"))
    assert found == {}
    # the hidden part of a long context is counted, not silently cut
    page.goto(f"{server}/replay?trace=wide&step=4")
    settle(page, 700)
    expect(page.locator(".svz-current .svz-prompt")).to_contain_text("earlier characters not shown")
    page.goto(f"{server}/replay?trace=long&step=300")
    settle(page, 700)
    expect(page.locator(".svz-current .svz-hidden")).to_contain_text("earlier generated tokens not shown")


def test_presentation_mode_at_1280x720_enlarges_what_teaches(server, page):
    """Public report: presentation mode enlarged the title and captions but not the per-draft sentences, the
    table, the section headings or the model line. Checked on a small projector's screen too."""
    page.set_viewport_size({"width": 1280, "height": 720})
    sizes = {}
    sel = ".svz-current .svz-describe li, .svz-current .svz-table td, .svz-current .svz-label, .svz-meta"
    for present in (False, True):
        page.goto(f"{server}/replay?trace=sampling-t0.7&step=5{'&present=1' if present else ''}")
        settle(page, 1000)
        sizes[present] = page.evaluate(
            f"() => [...document.querySelectorAll('{sel}')].map(e => [e.className || e.tagName, parseFloat(getComputedStyle(e).fontSize)])"
        )
        assert {c for c, _ in sizes[present]} >= {"svz-label", "svz-meta", "LI", "TD"}
    small = {c: f for c, f in sizes[False]}
    assert all(f >= 1.35 * small[c] for c, f in sizes[True]), sizes
    from tests.browserkit import wider_than_column

    assert wider_than_column(page) == []
    page.screenshot(path=str(ARTIFACTS / "replay-present-1280x720.png"))
