"""Hold the Live page's measured speedup against `python -m specviz bench` on the same settings.

    .venv/bin/python scripts/live_vs_bench.py                # 1 warm-up + 3 Live runs, then bench --reps 3
    .venv/bin/python scripts/live_vs_bench.py --runs 5 --json-out docs/live-vs-bench.json

Starts the app (`streamlit run app.py`) on a free loopback port, opens the Live page in headless
Chromium on this same machine (as on an instructor's laptop), keeps the page's defaults (the
embedded pair, sampling, T = 0.7, gamma 4, 64 tokens, its default prompt), ticks "Also run the
evaluation model alone", presses Run and reads the "Measured speedup" the page reports. Then it
stops the app and runs `bench` with the same prompt and settings right after. Nothing else may
run on the machine meanwhile. docs/BENCHMARKS.md records the result.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from specviz.live import LiveSettings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
SPEEDUP = re.compile(r"Measured speedup ([0-9.]+)×")
SPEEDS = re.compile(
    r"Speculative output · ([0-9.]+) tok/s.*?Evaluation model alone · ([0-9.]+) tok/s.*?gives ([0-9.]+) tok/s", re.S
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def live_speedups(runs: int, warmup: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    port = _port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true", f"--server.port={port}",
         "--server.address=127.0.0.1", "--browser.gatherUsageStats=false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            for _ in range(120):
                try:
                    page.goto(f"http://127.0.0.1:{port}/live", timeout=5000)
                    break
                except Exception:
                    time.sleep(1)
            page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=120_000)
            page.get_by_text("Also run the evaluation model alone").click()
            for i in range(warmup + runs):
                page.get_by_role("button", name="Run", exact=True).click()
                # the previous result stays on the page until this run ends: wait for this run's own heading
                page.wait_for_function(
                    f"() => document.body.innerText.includes('Result of run {i + 1}') && "
                    "/Measured speedup/.test(document.body.innerText) && "
                    "document.querySelector(\"[data-testid='stApp']\").dataset.testScriptState === 'notRunning'",
                    timeout=600_000,
                )
                body = page.inner_text("body")
                m = SPEEDUP.search(body)
                value = float(m.group(1)) if m else float("nan")
                label = "warm-up" if i < warmup else f"run {i - warmup + 1}"
                speeds = SPEEDS.search(body)
                detail = (
                    f" (speculative {speeds.group(1)} tok/s wall, {speeds.group(3)} tok/s model time; "
                    f"alone {speeds.group(2)} tok/s)"
                    if speeds
                    else ""
                )
                print(f"live {label}: measured speedup {value:.2f}x{detail}", file=sys.stderr)
                if i >= warmup:
                    out.append(value)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def bench_speedup(reps: int, json_out: Path) -> dict:
    s = LiveSettings()
    argv = [
        sys.executable, "-m", "specviz", "bench", "--prompt", s.prompt, "--rule", s.rule,
        "--temperature", str(s.temperature), "--gamma", str(s.gamma), "--max-new-tokens", str(s.max_new_tokens),
        "--seed", str(s.seed), "--reps", str(reps), "--json-out", str(json_out),
    ]  # fmt: skip
    subprocess.run(argv, cwd=ROOT, check=True)
    return json.loads(json_out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json-out", type=Path, default=None)
    args = ap.parse_args()
    live = live_speedups(args.runs, args.warmup)
    with tempfile.TemporaryDirectory() as tmp:
        bench = bench_speedup(args.reps, Path(tmp) / "bench.json")
    live_median = statistics.median(live)
    ratio = live_median / bench["speedup_vs_target"]
    result = {
        "date": bench["date"],
        "machine": bench["machine"],
        "settings": {**LiveSettings().__dict__, "compare": True},
        "live_speedups": live,
        "live_median": live_median,
        "bench_speedup": bench["speedup_vs_target"],
        "bench_tokens_per_s": bench["tokens_per_s"],
        "live_over_bench": ratio,
        "within_15_percent": abs(ratio - 1) <= 0.15,
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
