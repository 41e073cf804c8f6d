"""The Live page's measured speedup against `bench` with the same settings, in two set-ups.

classroom: the run is started in a headless Chromium, whose page is then frozen (the browser draws
  nothing, as when a class watches on other machines) until the run's verdict can be read.
laptop: the same, but the page stays live and draws the progress and the streamed text on the
  server's own cores while it decodes.

After one warm-up run, each set-up runs `--runs` Live runs (the page's defaults); bench runs the same prompt and settings
(`--reps` timed repetitions) in the same session, with no browser. Prints one JSON line per
measurement and a summary; `--json-out` keeps them. Run alone on the machine (no other job).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from specviz.run.live import LiveSettings
from tests.browserkit import chromium_page, serve_app, settle

RATIO = re.compile(r"Speculative decoding was ([0-9.]+)× the evaluation model alone")


def live_runs(url: str, runs: int, frozen: bool) -> list[float]:
    out = []
    with chromium_page() as page:
        for _ in range(runs):
            page.goto(f"{url}/live")
            settle(page)
            page.get_by_role("button", name="Run", exact=True).click()
            page.wait_for_timeout(500)
            if frozen:  # the browser stops drawing; its connection stays open, so the run goes on
                cdp = page.context.new_cdp_session(page)
                cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
                time.sleep(45)
                cdp.send("Page.setWebLifecycleState", {"state": "active"})
            page.get_by_text("Speculative decoding was").first.wait_for(timeout=300_000)
            m = RATIO.search(page.inner_text("body"))
            if m:
                out.append(float(m.group(1)))
                print(json.dumps({"setup": "classroom" if frozen else "laptop", "speedup": out[-1]}), flush=True)
    return out


def bench(reps: int) -> dict:
    s = LiveSettings()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "specviz", "bench", "--prompt", s.prompt, "--gamma", str(s.gamma)]
        cmd += ["--rule", s.rule, "--temperature", str(s.temperature), "--seed", str(s.seed)]
        cmd += ["--max-new-tokens", str(s.max_new_tokens), "--reps", str(reps), "--json-out", str(out)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def report(bench_result: dict, live: dict[str, list[float]]) -> dict:
    """The JSON docs/results/live-vs-bench.json keeps: each set-up's runs, medians, and their ratio to bench."""
    b = bench_result["speedup_vs_target"]
    out = {
        "date": bench_result["date"],
        "machine": bench_result["machine"],
        "dtype": bench_result["dtype"],
        "settings": {**LiveSettings().__dict__},
        "bench_speedup": b,
        "bench_tokens_per_s": bench_result["tokens_per_s"],
        "bench_alpha": bench_result["alpha"],
        "bench_tokens_per_step": bench_result["tokens_per_step"],
    }
    for setup, runs in live.items():
        med = statistics.median(runs)
        out[setup] = {
            "speedups": runs,
            "median": med,
            "over_bench": med / b,
            "within_15_percent": abs(med / b - 1) <= 0.15,
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--json-out", type=Path)
    a = ap.parse_args()
    bench_result = bench(a.reps)
    with serve_app(Path(tempfile.mkdtemp())) as url:
        live_runs(url, 1, frozen=False)  # warm-up: the server's first run loads the models and warms its caches
        live = {"classroom": live_runs(url, a.runs, frozen=True), "laptop": live_runs(url, a.runs, frozen=False)}
    result = report(bench_result, live)
    print(json.dumps(result, indent=1))
    if a.json_out:
        a.json_out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
