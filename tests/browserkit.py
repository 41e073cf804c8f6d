"""What every real-browser test needs: the app served by `streamlit run`, and Debian's chromium.

Browser tests skip when Playwright or /usr/bin/chromium is missing on a developer machine, and
fail when CI is set (`make test` installs both, so a missing browser there is a broken set-up).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"
TIMEOUT_MS = 60_000


def require_browser() -> None:
    why = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    if why is None and not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (`make browser` installs Debian's chromium)"
    if why is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run in CI: {why}")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_app(log_dir: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port; yields its URL once /_stcore/health says ok."""
    port = _free_port()
    log = open(log_dir / "streamlit.log", "w+")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"streamlit did not start:\n{log.read()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def chromium_page(height: int = 1100) -> Iterator[Page]:
    """A page in headless Debian chromium (Playwright's own browser download cannot work offline)."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        pg = browser.new_page(viewport={"width": 1440, "height": height})
        pg.set_default_timeout(TIMEOUT_MS)
        try:
            yield pg
        finally:
            browser.close()


_QUIET = """(ms) => new Promise((done) => {
    // resolves true only if no script run starts within ms: reruns (st.rerun, a widget's own
    // rerun, the first request's routing rerun) can follow a finished run after a short gap
    const app = () => document.querySelector("[data-testid='stApp']");
    const idle = () => app() !== null && app().getAttribute("data-test-script-state") === "notRunning";
    let quiet = idle();
    const obs = new MutationObserver(() => { if (!idle()) quiet = false; });
    obs.observe(document.body, {attributes: true, subtree: true, attributeFilter: ["data-test-script-state"]});
    setTimeout(() => { obs.disconnect(); done(quiet && idle()); }, ms);
})"""


def settle(pg: Page, quiet_ms: int = 700) -> None:
    """Wait until the script has finished running and stayed idle for quiet_ms; check it raised nothing.

    A slow machine (CI) can show a finished run and then start another one; a click made in
    between lands on elements that are about to be replaced, so idle must last a moment.
    """
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        pg.wait_for_selector(READY, timeout=TIMEOUT_MS)
        if pg.evaluate(_QUIET, quiet_ms):
            break
        if time.monotonic() > deadline:
            pytest.fail(f"the app never stayed idle for {quiet_ms} ms within {TIMEOUT_MS} ms")
    assert pg.locator("[data-testid='stException']").count() == 0


# Text cut off by its container: each text node's box against every ancestor that clips (overflow
# other than visible, or an ellipsis). Charts (SVG), KaTeX's hidden MathML copy and the off-screen
# "skip to content" link are left out.
_CLIPPED_JS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.querySelector('[data-testid="stApp"]'), NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const t = walker.currentNode;
    if (!t.textContent.trim()) continue;
    const el = t.parentElement;
    if (el.closest('.katex-mathml, svg, .js-plotly-plot, [data-testid="stSkipToContent"], .svz-frame[aria-hidden="true"]')) continue;
    const range = document.createRange(); range.selectNodeContents(t);
    const r = range.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    let a = el, clippedBy = null;
    while (a && a !== document.body) {
      const cs = getComputedStyle(a);
      if (cs.overflowX !== 'visible' || cs.textOverflow === 'ellipsis') {
        const ar = a.getBoundingClientRect();
        if (r.right > ar.right + 2 || r.left < ar.left - 2 || a.scrollWidth > a.clientWidth + 2 && cs.textOverflow === 'ellipsis') { clippedBy = a; break; }
      }
      a = a.parentElement;
    }
    if (clippedBy) out.push((clippedBy.getAttribute('data-testid') || clippedBy.tagName) + ': ' + t.textContent.trim().slice(0, 70));
  }
  return [...new Set(out)];
}"""


def clipped_text(pg: Page) -> list[str]:
    """The texts on the page that their containers cut off, as "container: text" (empty when none)."""
    return list(pg.evaluate(_CLIPPED_JS))


# Text inside Plotly charts: every visible label's box (axis titles, ticks, annotations, marker text,
# legend), checked against its chart's box (cut off) and against every other label of the chart
# (overlapping by more than a sliver). The hover layer is left out: it shows only under the mouse.
_CHART_TEXT_JS = """(slack) => {
  const out = [];
  for (const plot of document.querySelectorAll('.js-plotly-plot')) {
    const box = plot.getBoundingClientRect();
    if (box.width === 0 || plot.closest('.svz-frame[aria-hidden="true"]')) continue;  // a player's step drawn ahead, not shown
    const items = [];
    for (const t of plot.querySelectorAll('.main-svg text, .main-svg .annotation-text')) {
      if (t.closest('.hoverlayer, .modebar')) continue;
      const s = (t.textContent || '').trim();
      if (!s) continue;
      const cs = getComputedStyle(t);
      if (cs.display === 'none' || cs.visibility === 'hidden' || cs.opacity === '0') continue;
      const r = t.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) continue;
      items.push([s, r]);
      if (r.left < box.left - slack || r.right > box.right + slack || r.top < box.top - slack || r.bottom > box.bottom + slack)
        out.push('cut off: ' + s.slice(0, 40));
    }
    for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
      const [a, ra] = items[i], [b, rb] = items[j];
      const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (w > slack && h > slack) out.push('overlap: ' + a.slice(0, 30) + ' / ' + b.slice(0, 30));
    }
  }
  return [...new Set(out)];
}"""


def chart_text_problems(pg: Page, slack: float = 2.0) -> list[str]:
    """Labels inside the page's Plotly charts that stick out of their chart or overlap another label."""
    return list(pg.evaluate(_CHART_TEXT_JS, slack))


# Anything in the step view wider than its column, or a squeezed table: every element of the shown step (a chart counts as
# one box, its SVG inside is Plotly's) against the column it sits in and against the view; the
# document must not scroll sideways either.
_WIDER_JS = r"""() => {
  const frame = document.querySelector('.svz-frame.svz-current');
  if (!frame) return ['no step shown'];
  const out = [];
  const view = (document.querySelector('[data-testid="stMainBlockContainer"]') || document.body).getBoundingClientRect();
  for (const el of frame.querySelectorAll('*')) {
    if (el.closest('.js-plotly-plot') && !el.classList.contains('js-plotly-plot')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const col = el.parentElement.closest('.svz-left, .svz-right') || frame;
    if (col === frame && (r.right > view.right + 2)) { out.push(el.tagName.toLowerCase() + ' past the page (' + Math.round(r.right - view.right) + ' px)'); continue; }
    const c = col.getBoundingClientRect();
    const what = el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ? '.' + el.className.split(' ')[0] : '');
    if (r.right > c.right + 2 || r.left < c.left - 2) out.push(what + ' wider than its column (' + Math.round(r.width) + ' > ' + Math.round(c.width) + ' px)');
    else if (r.right > view.right + 2) out.push(what + ' past the view');
    else if (el.scrollWidth > el.clientWidth + 2 && getComputedStyle(el).overflowX !== 'visible') out.push(what + ' scrolls sideways');
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 2) out.push('the page scrolls sideways');
  const cols = [...frame.querySelectorAll(':scope > .svz-cols > div')].map(c => c.getBoundingClientRect().width);
  if (cols.some(w => w < 200)) out.push('a column squeezed to ' + Math.round(Math.min(...cols)) + ' px');
  // a one-word cell of the step table (a number, "outcome") broken across lines: the table is squeezed
  for (const cell of frame.querySelectorAll('.svz-table th, .svz-table td:not(.svz-tokcell)')) {
    const text = cell.textContent.trim();
    if (!text || /\s/.test(text)) continue;
    const range = document.createRange(); range.selectNodeContents(cell);
    if (new Set([...range.getClientRects()].map(r => Math.round(r.top))).size > 1) out.push('"' + text.slice(0, 20) + '" broken across lines in the table');
  }
  return [...new Set(out)].slice(0, 10);
}"""


def wider_than_column(pg: Page) -> list[str]:
    """What in the player's shown step is wider than its column, or squeezes a column (empty when nothing)."""
    return list(pg.evaluate(_WIDER_JS))
