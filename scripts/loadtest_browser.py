"""A classroom decoding in their own browsers: what the Live in your browser page costs the server.

Serves an export-live folder (`python -m specviz export-live -o static/live`) from one server, opens
`--browsers` headless Chromiums (separate browser processes: separate caches, each downloads the
models), waits until each page has loaded its models, then presses Run speculative in all of them at
once (greedy, γ `--gamma`, `--tokens` new tokens) and waits until every decode has finished. Done for
each server in `--servers`:

  - streamlit: `streamlit run app.py` on a free loopback port, the folder in static/live/ next to app.py
    (what the app's /browser page embeds); the page is opened directly at /app/static/live/index.html;
  - http: `python -m http.server` on the folder.

Reports per server, as a table and as JSON (`--json-out`):
  - the server process's CPU seconds (utime + stime from /proc/<pid>/stat) and % of one core over
    idle (no browser, `--idle` seconds), the whole wave (page opens and model downloads to the last
    decode's end), loading (page opens → every page ready) and decoding (every browser has clicked
    Run → the last decode finished);
  - errors: page errors, console errors, failed requests, HTTP statuses ≥ 400, pages that did not
    load, decodes that did not finish (must be 0);
  - per browser: seconds to ready, tok/s as the page reports it (the tokens after the first step's,
    first token to last), time to the first token, and tokens per second of the whole decode.

The browsers share this machine's cores with the server, so on a small machine they are slow; what
is measured is the server process.

    .venv/bin/python scripts/loadtest_browser.py                   # 4 browsers, 16 tokens, both servers
    .venv/bin/python scripts/loadtest_browser.py --browsers 8 --servers http --json-out load.json

Needs Playwright for Python and Debian's chromium (/usr/bin/chromium), like the browser tests. If
static/live is missing it is exported first (and removed afterwards unless --keep-folder).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest import CHROMIUM, CHROMIUM_ARGS, ROOT, cpu_s, free_port, rss_mb, start_server

LIVE = ROOT / "static" / "live"  # where Streamlit serves it from: /app/static/live/
READY_JS = "() => window.specvizLive && (window.specvizLive.ready || window.specvizLive.error !== null)"
CLICK_JS = """() => {
  const run = document.getElementById("run-spec");
  if (run.disabled) return false;
  setTimeout(() => run.click(), 0);
  return true;
}"""
STATE_JS = "() => JSON.parse(JSON.stringify({...window.specvizLive, trace: null}))"


@dataclass
class Browser:
    i: int
    errors: list[str] = field(default_factory=list)
    requests: int = 0
    ready_s: float | None = None  # page open → models loaded, seen from here
    load_ms: float | None = None  # the page's own loading time
    backend: str | None = None
    clicked_at: float | None = None
    done_at: float | None = None
    done_cpu: float | None = None  # the server's CPU seconds when this decode was seen finished
    run: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        r = self.run or {}
        wall = self.done_at - self.clicked_at if self.done_at and self.clicked_at else None
        tokens = r.get("tokens")
        return {
            "browser": self.i,
            "ready_s": rnd(self.ready_s),
            "page_load_ms": rnd(self.load_ms, 0),
            "backend": self.backend,
            "finished": self.done_at is not None and bool(r),
            "tokens": tokens,
            "tok_per_s": rnd(r.get("tokensPerSecond"), 2),
            "first_token_s": rnd(None if r.get("firstTokenMs") is None else r["firstTokenMs"] / 1000, 2),
            "decode_wall_s": rnd(wall),
            "tok_per_s_wall": rnd(tokens / wall if tokens and wall else None, 2),
            "requests": self.requests,
            "errors": self.errors,
        }


# ---------------------------------------------------------------- the servers


def start_http(folder: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(folder), str(port)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"http.server exited early; see {log}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/manifest.json", timeout=2):
            return proc
        time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"http.server did not answer in 30 s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ---------------------------------------------------------------- the browsers


def watch(page: Any, b: Browser) -> None:
    def on_request(_r: Any) -> None:
        b.requests += 1

    page.on("request", on_request)
    page.on("pageerror", lambda exc: b.errors.append(f"page error: {exc}"))
    page.on("console", lambda m: b.errors.append(f"console error: {m.text[:200]}") if m.type == "error" else None)
    page.on("requestfailed", lambda r: b.errors.append(f"request failed: {r.url} ({r.failure})"))
    page.on("response", lambda r: b.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)


async def open_page(page: Any, url: str, b: Browser, args: argparse.Namespace) -> bool:
    """Open the page, wait for its models, fill the form; True when it is ready to run."""
    t0 = time.monotonic()
    try:
        await page.goto(url, timeout=args.load_timeout * 1000)
        await page.wait_for_function(READY_JS, polling=500, timeout=args.load_timeout * 1000)
        state = await page.evaluate(STATE_JS)
        if not state["ready"]:
            b.errors.append(f"the models did not load: {state['error']}")
            return False
        b.ready_s, b.load_ms, b.backend = time.monotonic() - t0, state["loadMs"], state["backend"]
        await page.fill("#prompt", args.prompt)
        await page.select_option("#rule", "greedy")
        await page.fill("#gamma", str(args.gamma))
        await page.fill("#max-new", str(args.tokens))
        return True
    except Exception as exc:
        b.errors.append(f"loading: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return False


async def await_decode(page: Any, b: Browser, pid: int, args: argparse.Namespace) -> None:
    try:
        await page.wait_for_function(
            "() => window.specvizLive.runCount > 0 && !window.specvizLive.busy",
            polling=250,
            timeout=args.decode_timeout * 1000,
        )
        b.done_at, b.done_cpu = time.monotonic(), cpu_s(pid)
        state = await page.evaluate(STATE_JS)
        b.run = state["runs"].get("speculative")
        b.errors += [f"page says: {m['text'][:200]}" for m in state["messages"] if m["level"] == "error"]
        if not b.run:
            b.errors.append("the decode ended without a result")
    except Exception as exc:
        b.errors.append(f"decoding: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


async def wave(url: str, pid: int, args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browsers = [
            await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            for _ in range(args.browsers)
        ]
        pages = [await br.new_page(viewport={"width": 1280, "height": 1000}) for br in browsers]
        bs = [Browser(i) for i in range(args.browsers)]
        for page, b in zip(pages, bs, strict=True):
            watch(page, b)

        t0, c0 = time.monotonic(), cpu_s(pid)
        ok = await asyncio.gather(*(open_page(pg, url, b, args) for pg, b in zip(pages, bs, strict=True)))
        t_ready, c_ready = time.monotonic(), cpu_s(pid)
        print(f"  loaded: {sum(ok)} of {args.browsers} pages ready after {t_ready - t0:.0f} s", flush=True)

        go = [(pg, b) for pg, b, good in zip(pages, bs, ok, strict=True) if good]

        async def click(pg: Any, b: Browser) -> None:
            # the click is queued in the page and this returns at once: a real click (page.click) returns only
            # after the page's click handler has run, and that runs the first model pass synchronously
            try:
                if await pg.evaluate(CLICK_JS):
                    b.clicked_at = time.monotonic()
                else:
                    b.errors.append("Run speculative was disabled")
            except Exception as exc:
                b.errors.append(f"clicking Run: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")

        t_clicked = c_clicked = None
        if go:
            await asyncio.gather(*(click(pg, b) for pg, b in go))
            t_clicked, c_clicked = time.monotonic(), cpu_s(pid)  # every browser has clicked Run
            await asyncio.gather(*(await_decode(pg, b, pid, args) for pg, b in go if b.clicked_at is not None))
        t_end, c_end = time.monotonic(), cpu_s(pid)
        finished = [b for b in bs if b.done_at is not None]
        if finished and t_clicked is not None:  # the decoding window ends when the last decode was seen finished
            last = max(finished, key=lambda b: b.done_at or 0.0)
            t_last, c_last = last.done_at or t_end, last.done_cpu or c_end
        else:
            t_last, c_last = t_end, c_end
        for br in browsers:
            await br.close()

    def span(ta: float | None, ca: float | None, tb: float, cb: float) -> dict[str, float] | None:
        if ta is None or ca is None:
            return None
        wall, cpu = max(tb - ta, 1e-3), cb - ca
        return {"wall_s": round(wall, 1), "server_cpu_s": round(cpu, 2), "pct_of_one_core": round(100 * cpu / wall, 2)}

    errors = [f"browser {b.i}: {e}" for b in bs for e in b.errors]
    errors += [f"browser {b.i}: the decode did not finish" for b in bs if b.done_at is None or not b.run]
    return {
        "wave": span(t0, c0, t_last, c_last),
        "loading": span(t0, c0, t_ready, c_ready),
        "decoding": span(t_clicked, c_clicked, t_last, c_last),
        "errors": errors,
        "browsers": [b.summary() for b in bs],
    }


# ---------------------------------------------------------------- main


def rnd(x: float | None, n: int = 1) -> float | None:
    return None if x is None else round(x, n)


def fmt(span: dict[str, float] | None) -> str:
    if span is None:
        return "–"
    return f"{span['pct_of_one_core']:.2f}% ({span['server_cpu_s']:.2f} s in {span['wall_s']:.0f} s)"


def measure(server: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    log = ROOT / "artifacts" / f"loadtest-browser-{server}.log"
    log.parent.mkdir(exist_ok=True)
    if server == "streamlit":
        proc, path = start_server(port, log), "/app/static/live/index.html"
    else:
        proc, path = start_http(folder, port, log), "/index.html"
    url = f"http://127.0.0.1:{port}{path}"
    print(f"{server}: {url} (pid {proc.pid})", flush=True)
    try:
        time.sleep(2)  # past the start-up
        t0, c0 = time.monotonic(), cpu_s(proc.pid)
        time.sleep(args.idle)
        idle_cpu = cpu_s(proc.pid) - c0
        idle = {"wall_s": args.idle, "server_cpu_s": round(idle_cpu, 2)}
        idle["pct_of_one_core"] = round(100 * idle_cpu / (time.monotonic() - t0), 2)
        out = {"url_path": path, "command": " ".join(proc.args), "idle": idle} | asyncio.run(wave(url, proc.pid, args))  # type: ignore[arg-type]
        out["rss_mb_after"] = round(rss_mb(proc.pid), 1)
        if proc.poll() is not None:
            out["errors"].append("the server exited during the test")
    finally:
        stop(proc)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--browsers", type=int, default=4, help="headless Chromiums decoding at once")
    ap.add_argument("--tokens", type=int, default=16, help="new tokens per decode")
    ap.add_argument("--gamma", type=int, default=4, help="drafts per step")
    ap.add_argument("--prompt", default="Tell me about owls.")
    ap.add_argument("--servers", default="streamlit,http", help="comma-separated: streamlit, http")
    ap.add_argument("--folder", type=Path, default=LIVE, help="the export-live folder (streamlit needs static/live)")
    ap.add_argument("--idle", type=float, default=10, help="seconds of the idle server measured before the wave")
    ap.add_argument("--load-timeout", type=int, default=240, help="seconds a page may take to load its models")
    ap.add_argument("--decode-timeout", type=int, default=240, help="seconds a decode may take")
    ap.add_argument("--keep-folder", action="store_true", help="keep static/live if this script exported it")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if bad := set(servers) - {"streamlit", "http"}:
        raise SystemExit(f"unknown servers: {', '.join(sorted(bad))}")
    if "streamlit" in servers and args.folder.resolve() != LIVE.resolve():
        raise SystemExit(f"the streamlit server serves {LIVE}; leave --folder out")
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (make browser)")

    made = False
    if not (args.folder / "manifest.json").is_file():
        print(f"exporting {args.folder} …", flush=True)
        cmd = [sys.executable, "-m", "specviz", "export-live", "-o", str(args.folder)]
        subprocess.run(cmd, cwd=ROOT, check=True)
        made = True
    manifest = json.loads((args.folder / "manifest.json").read_text())
    started = time.time()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "args": {k: str(v) for k, v in vars(args).items()},
        "models": {
            k: {"name": manifest[k]["name"], "quant": manifest[k]["quant"], "bytes": manifest[k]["bytes"]}
            for k in ("draft", "target")
        },
        "criterion": f"{args.browsers} browsers decoding {args.tokens} tokens at once: 0 errors, the server process under 5% of one core while they decode",
        "servers": {},
    }
    try:
        for server in servers:
            res = measure(server, args.folder, args)
            dec = res["decoding"]
            res["passes"] = not res["errors"] and dec is not None and dec["pct_of_one_core"] < 5
            report["servers"][server] = res
            print(f"  {server}: decoding {dec}, errors {len(res['errors'])}", flush=True)
    finally:
        if made and not args.keep_folder:
            shutil.rmtree(args.folder, ignore_errors=True)

    print(json.dumps(report, indent=2))
    print()
    print(
        "| server | browsers | server CPU, decoding | server CPU, whole wave | idle | errors | tok/s per browser | first token s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for server, res in report["servers"].items():
        rates = ", ".join("–" if b["tok_per_s"] is None else f"{b['tok_per_s']:.2f}" for b in res["browsers"])
        ttft = ", ".join("–" if b["first_token_s"] is None else f"{b['first_token_s']:.1f}" for b in res["browsers"])
        print(
            f"| {server} | {args.browsers} | {fmt(res['decoding'])} | {fmt(res['wave'])} | "
            f"{res['idle']['pct_of_one_core']:.2f}% | {len(res['errors'])} | {rates} | {ttft} |"
        )
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0 if all(r["passes"] for r in report["servers"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
