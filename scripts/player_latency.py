"""How long a step takes in the browser player: key press → the new step painted, figures included.

Opens the step-through page (`streamlit run app.py` on a free loopback port) on a sample and,
separately, a lesson file of the same trace from file:// with the network off, in headless Debian
chromium; presses → `--presses` times at two paces (a reader: one press per `--pace-ms`; a held
key: one per 50 ms), and reads the player's own timings (window.__svzTimes: from the key event's
timestamp to the first task after the frame holding every figure of the step was painted). On the
app page it also counts the script's reruns while stepping (a MutationObserver on Streamlit's
script-state attribute): the player must cause none.

    .venv/bin/python scripts/player_latency.py --json-out docs/results/player-latency.json

Needs Playwright for Python and /usr/bin/chromium. No timing here is a test: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from loadtest import CHROMIUM, CHROMIUM_ARGS, READY, free_port, start_server  # noqa: E402

_RERUNS = """() => { window.__svzReruns = 0;
  const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => { if (app.getAttribute("data-test-script-state") === "running") window.__svzReruns++; })
    .observe(app, {attributes: true, attributeFilter: ["data-test-script-state"]}); }"""


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def press_run(page: Any, presses: int, pace_ms: int) -> dict[str, Any]:
    """Press → `presses` times, `pace_ms` apart; the player's timings of those presses.

    A press that comes before the previous step is drawn replaces it (the player draws the newest
    step only), so at a held key's pace only some presses are timed, the last one always.
    """
    page.evaluate("window.__svzTimes.length = 0")  # the player holds this array
    start = int(page.evaluate("document.querySelector('.svz').dataset.step"))
    for _ in range(presses):
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(pace_ms)
    page.wait_for_function(f"document.querySelector('.svz').dataset.step === '{start + presses}'", timeout=60_000)
    page.wait_for_timeout(3000)  # the last step's figures are drawn
    times = page.evaluate("window.__svzTimes")
    if not times:
        raise SystemExit("no press was timed: is the player on the page?")
    return {
        "presses": presses,
        "pace_ms": pace_ms,
        "timed": len(times),
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(pct(times, 0.95), 1),
        "max_ms": round(max(times), 1),
        "last_press_ms": round(times[-1], 1),
    }


def measure(page: Any, presses: int, pace_ms: int) -> dict[str, Any]:
    page.wait_for_selector(".svz[data-step] .svz-current .svz-timeline .main-svg", timeout=120_000)
    page.wait_for_timeout(1500)  # the next step is drawn ahead
    reader = press_run(page, presses, pace_ms)
    page.keyboard.press("Home")
    page.wait_for_selector(".svz[data-step='0'] .svz-current .svz-timeline .main-svg")
    page.wait_for_timeout(1500)
    held = press_run(page, presses, 50)
    return {"reader": reader, "held_key": held}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trace", default="long", help="a sample's name (assets/traces)")
    ap.add_argument("--presses", type=int, default=50)
    ap.add_argument("--pace-ms", type=int, default=500, help="a reader's time between presses")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from specviz.teach.lesson import write_lesson
    from specviz.trace import load

    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if "model name" in ln
            ),
            platform.machine(),
        ),
        "cores": os.cpu_count(),
        "trace": args.trace,
    }
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp) / "streamlit.log")
        lesson = Path(tmp) / "lesson.html"
        out["lesson_bytes"] = write_lesson(
            [(args.trace, load(ROOT / "assets" / "traces" / f"{args.trace}.json.gz"))], lesson
        )
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                t0 = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}/replay?trace={args.trace}", timeout=120_000)
                page.wait_for_selector(READY, timeout=120_000)
                page.wait_for_selector(".svz[data-step] .svz-current .svz-acceptance .main-svg", timeout=120_000)
                out["app_open_s"] = round(time.perf_counter() - t0, 2)
                page.evaluate(_RERUNS)
                out["app"] = measure(page, args.presses, args.pace_ms)
                out["app"]["reruns_while_stepping"] = page.evaluate("window.__svzReruns")
                page.close()
                ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, offline=True)
                page = ctx.new_page()
                t0 = time.perf_counter()
                page.goto(lesson.as_uri())
                page.wait_for_selector(".svz[data-step] .svz-current .svz-acceptance .main-svg", timeout=120_000)
                out["lesson_open_s"] = round(time.perf_counter() - t0, 2)
                out["lesson"] = measure(page, args.presses, args.pace_ms)
                browser.close()
        finally:
            server.terminate()
            server.wait(15)
    print(json.dumps(out, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
