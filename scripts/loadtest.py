"""A classroom on one server: many real browser sessions against one `streamlit run app.py`.

Starts the app on a free loopback port (127.0.0.1 only), opens `--students` headless Chromium
sessions (Playwright browser contexts: separate cookies, separate Streamlit sessions) that each
open /replay?trace=long and click Next `--steps` times, while `--live` more sessions run live
decoding with the default pair (prompt lookup while assets/draft is missing) `--live-runs` times
each. Every loop is bounded; the script stops by itself. With `--waves 2` it does it all twice, so
the server's memory after the second wave shows whether sessions leave memory behind.

Reports, as a table and as JSON (`--json-out`):
  - time per step change: click on Next → the player shows the new step with its figures (p50, p95, max;
    the player steps in the browser, so this is the browsers' CPU, all on this machine, not the server's);
  - the server's CPU seconds during each wave (from /proc): what stepping and the live runs cost it;
  - live runs: seconds from Run to the result;
  - errors: timeouts, Streamlit exception boxes, uncaught page errors (must be 0);
  - the server's RSS (psutil, else /proc): cold (just started); before (after a warm-up session
    opened the long sample and made one live run, so the shared state that is kept on purpose,
    the samples and the loaded pair, is in it); the peak during each wave; after each wave
    (sessions closed, `--settle` seconds later; Streamlit frees a closed tab's session after
    server.disconnectedSessionTTL, 120 s, so use --settle 130 or more to see it).

    .venv/bin/python scripts/loadtest.py                         # 10 students + 2 live, 30 steps each
    .venv/bin/python scripts/loadtest.py --students 30 --steps 20 --waves 2 --json-out load.json

Needs Playwright for Python and Debian's chromium (/usr/bin/chromium), like the browser tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"


@dataclass
class Results:
    step_ms: list[float] = field(default_factory=list)
    live_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss_mb: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # the server's CPU seconds per wave


# ---------------------------------------------------------------- the server and its memory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of the server and its children, in MB (psutil if installed, else /proc)."""
    try:
        import psutil

        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
    except ImportError:
        text = Path(f"/proc/{pid}/status").read_text()
        kb = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))  # type: ignore[union-attr]
        return kb / 1024
    except Exception:
        return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the server process has used so far (from /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    # one thread per PyTorch op: on a small shared CPU, more threads only wait on each other
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    cmd += ["--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"streamlit exited early; see {log}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r,
        ):
            if r.read().strip() == b"ok":
                return proc
        time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"streamlit did not become healthy in 120 s; see {log}")


class Sampler(threading.Thread):
    """The server's RSS every half second while the sessions run; keeps the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            self.peak = max(self.peak, rss_mb(self.pid))


# ---------------------------------------------------------------- the sessions


async def settle(page: Any, timeout_ms: int) -> None:
    await page.wait_for_selector(READY, timeout=timeout_ms)


async def check_page(page: Any, who: str, res: Results) -> None:
    if await page.locator("[data-testid='stException']").count():
        res.errors.append(f"{who}: an exception box is on the page")


async def student(ctx: Any, url: str, i: int, steps: int, res: Results, timeout_ms: int) -> None:
    """Open the long sample in the step-through player and click Next `steps` times, timing each step
    change (click → the player shows the new step, its figures drawn)."""
    page = await ctx.new_page()
    page.on("pageerror", lambda exc: res.errors.append(f"student {i}: page error {exc}"))
    try:
        await page.goto(f"{url}/replay?trace=long&step={i * 7}", timeout=timeout_ms)
        await settle(page, timeout_ms)
        await page.wait_for_selector(".svz[data-step] .svz-current .svz-timeline .main-svg", timeout=timeout_ms)
        k = int(await page.get_attribute(".svz", "data-step") or 0)
        last = int(await page.get_attribute(".svz-slider", "max") or 0)
        for _ in range(steps):
            if k >= last:
                await page.get_by_role("button", name="« First").click()
                k = 0
                await page.wait_for_selector(".svz[data-step='0']", timeout=timeout_ms)
            t0 = time.perf_counter()
            await page.get_by_role("button", name="Next ▶").click()
            await page.wait_for_selector(
                f".svz[data-step='{k + 1}'] .svz-current .svz-timeline .main-svg", timeout=timeout_ms
            )
            res.step_ms.append((time.perf_counter() - t0) * 1000)
            k += 1
            await asyncio.sleep(0.3)  # a student reads a little before the next click
        await check_page(page, f"student {i}", res)
    except Exception as exc:
        res.errors.append(f"student {i}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        await page.close()


async def live_user(ctx: Any, url: str, i: int, runs: int, res: Results, timeout_ms: int, run_timeout_s: int) -> None:
    """Press Run on the live page `runs` times with the preselected default pair and settings."""
    page = await ctx.new_page()
    page.on("pageerror", lambda exc: res.errors.append(f"live {i}: page error {exc}"))
    try:
        await page.goto(f"{url}/live", timeout=timeout_ms)
        await settle(page, timeout_ms)
        stop = page.locator(".st-key-live_stop button").first  # by widget key: other buttons may say "Run" or "Stop"
        for _ in range(runs):
            t0 = time.perf_counter()
            await page.locator(".st-key-live_run button").first.click()
            # the Stop button is there while the run waits for the lock and decodes; the result replaces it
            with contextlib.suppress(Exception):
                await stop.wait_for(state="visible", timeout=30_000)
            await stop.wait_for(state="detached", timeout=run_timeout_s * 1000)
            await settle(page, run_timeout_s * 1000)
            await page.get_by_role("heading", name="Result").wait_for(timeout=timeout_ms)
            res.live_s.append(time.perf_counter() - t0)
            errors = await page.locator("[data-testid='stAlertContentError']").all_inner_texts()
            if errors:
                res.errors.append(f"live {i}: {errors[0][:200]}")
            await check_page(page, f"live {i}", res)
    except Exception as exc:
        res.errors.append(f"live {i}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        await page.close()


async def warm_up(url: str, args: argparse.Namespace, res: Results) -> None:
    """One session that opens the long sample and makes one live run, so "before" includes the loaded pair."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        ctx = await browser.new_context()
        warm = Results()
        await student(ctx, url, 0, 1, warm, args.timeout * 1000)
        await live_user(ctx, url, 0, 1, warm, args.timeout * 1000, args.run_timeout)
        res.errors += [f"warm-up: {e}" for e in warm.errors]
        await ctx.close()
        await browser.close()


async def wave(url: str, args: argparse.Namespace, res: Results) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
        )
        contexts = [
            await browser.new_context(viewport={"width": 1280, "height": 1000})
            for _ in range(args.students + args.live)
        ]
        timeout_ms = args.timeout * 1000
        jobs = [student(contexts[i], url, i, args.steps, res, timeout_ms) for i in range(args.students)]
        jobs += [
            live_user(contexts[args.students + i], url, i, args.live_runs, res, timeout_ms, args.run_timeout)
            for i in range(args.live)
        ]
        await asyncio.gather(*jobs)
        for ctx in contexts:
            await ctx.close()
        await browser.close()


# ---------------------------------------------------------------- main


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--students", type=int, default=10, help="replay sessions stepping through the long sample")
    ap.add_argument("--steps", type=int, default=30, help="Next clicks per replay session")
    ap.add_argument("--live", type=int, default=2, help="sessions running live decoding at the same time")
    ap.add_argument("--live-runs", type=int, default=2, help="runs per live session")
    ap.add_argument("--waves", type=int, default=1, help="repeat everything this many times (memory growth)")
    ap.add_argument("--timeout", type=int, default=120, help="seconds any one page action may take")
    ap.add_argument("--run-timeout", type=int, default=600, help="seconds one live run may take")
    ap.add_argument("--settle", type=int, default=30, help="seconds to wait after the sessions close")
    ap.add_argument("--no-warm-up", action="store_true", help="measure 'before' on a cold server (no model loaded)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (make browser)")

    port = free_port()
    log = ROOT / "artifacts" / "loadtest-server.log"
    log.parent.mkdir(exist_ok=True)
    proc = start_server(port, log)
    url = f"http://127.0.0.1:{port}"
    res = Results()
    started = time.time()
    try:
        res.rss_mb["cold"] = rss_mb(proc.pid)
        if not args.no_warm_up:  # the shared, deliberately kept state: the samples and the default pair
            asyncio.run(warm_up(url, args, res))
            time.sleep(min(args.settle, 10))
        res.rss_mb["before"] = rss_mb(proc.pid)
        for w in range(1, args.waves + 1):
            sampler = Sampler(proc.pid)
            sampler.start()
            t0, c0 = time.monotonic(), cpu_s(proc.pid)
            asyncio.run(wave(url, args, res))
            res.cpu[f"wave{w}"] = {
                "server_cpu_s": round(cpu_s(proc.pid) - c0, 1),
                "wall_s": round(time.monotonic() - t0, 1),
            }
            sampler.done.set()
            sampler.join()
            res.rss_mb[f"peak_wave{w}"] = sampler.peak
            print(f"wave {w}: {time.monotonic() - t0:.0f} s, peak RSS {sampler.peak:.0f} MB", flush=True)
            time.sleep(args.settle)
            res.rss_mb[f"after_wave{w}"] = rss_mb(proc.pid)
        if proc.poll() is not None:
            res.errors.append("the server exited during the test")
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "draft": "default draft" if (ROOT / "assets" / "draft" / "config.json").is_file() else "prompt lookup",
        "step_changes": len(res.step_ms),
        "step_ms_p50": pct(res.step_ms, 0.5),
        "step_ms_p95": pct(res.step_ms, 0.95),
        "step_ms_max": max(res.step_ms, default=float("nan")),
        "step_ms_mean": statistics.fmean(res.step_ms) if res.step_ms else float("nan"),
        "live_runs": len(res.live_s),
        "live_s": [round(x, 1) for x in res.live_s],
        "errors": res.errors,
        "rss_mb": {k: round(v, 1) for k, v in res.rss_mb.items()},
        "server_cpu": res.cpu,
    }
    print(json.dumps(report, indent=2))
    print()
    print("| students | live | step changes | p50 ms | p95 ms | max ms | live runs (s) | errors | RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    rss = ", ".join(f"{k} {v:.0f}" for k, v in res.rss_mb.items())
    print(
        f"| {args.students} | {args.live} | {len(res.step_ms)} | {report['step_ms_p50']:.0f} | "
        f"{report['step_ms_p95']:.0f} | {report['step_ms_max']:.0f} | {', '.join(f'{x:.0f}' for x in res.live_s)} | "
        f"{len(res.errors)} | {rss} |"
    )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
