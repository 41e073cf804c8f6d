"""The Live in your browser page's own speed: speculative decoding against the evaluation model alone.

    .venv/bin/python scripts/browser_speed.py [--out DIR] [--prompts 3] [--new-tokens 64] [--gamma 4]
        [--threads 1|isolated|both] [--rounds 1] [--json-out FILE]

Serves an export-live folder (`python -m specviz export-live -o DIR`; `--out` reuses one already there,
else it is exported first, ~10 s with the ONNX cache warm) from a loopback http.server, opens the page
(specviz/assets/live/index.html) in headless Debian Chromium (/usr/bin/chromium, the browser tests'
flags), waits until it has loaded its models, then for each of the first `--prompts` prompts of
assets/prompts/eval.txt presses Run speculative and Run the evaluation model alone (greedy, γ
`--gamma`, `--new-tokens` new tokens) and reads the page's own measurement of each run from
window.specvizLive: tokens after the first step's, per second from the first token to the last
(loading and drawing left out, as the Python side times), and the time to the first token. Each round
runs every prompt both ways; the order (speculative first or alone first) alternates between rounds.

Done for each thread set-up in `--threads` (both: one after the other, a fresh browser each):
  - 1: served as `python -m http.server` serves it: the page is not cross-origin isolated, so
    onnxruntime-web runs one WebAssembly thread;
  - isolated: served with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy:
    require-corp, so the page may use up to min(4, navigator.hardwareConcurrency) threads (ortmodel.js).

Prints, per set-up, what the page says it runs on (its "Runs on:" note) and a table: prompt,
speculative tok/s, alone tok/s, their ratio, speculative steps, first-token seconds (speculative /
alone), whether both gave the same tokens; with `--rounds` > 1 the medians over rounds. Then the mean
of each column and the mean of the per-prompt ratios. The CPU (lscpu's model name), the load average
and the date head the output; `--json-out` keeps all of it, every run included.

The browser shares this machine's cores with everything else on it: run it on an idle machine.
Needs Playwright for Python and Debian's chromium, like the browser tests.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loadtest import CHROMIUM, CHROMIUM_ARGS, ROOT
from loadtest_browser import READY_JS, STATE_JS, rnd

BUTTONS = {"speculative": "run-spec", "alone": "run-alone"}
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
SETUPS = {"1": False, "isolated": True}  # set-up → served with the isolation headers
# pressed from inside the page: page.click returns only after the click handler, which runs the first pass
CLICK_JS = """(id) => {
  const b = document.getElementById(id);
  if (b.disabled) return false;
  window.specvizLive.messages = [];
  setTimeout(() => b.click(), 0);
  return true;
}"""
STEPS_JS = """() => {
  const t = window.specvizLive.trace;
  return t ? {steps: t.steps.length, accepted: t.steps.reduce((n, s) => n + s.n_accepted, 0)} : null;
}"""


class Handler(http.server.SimpleHTTPRequestHandler):
    """A static file server, quiet, adding the cross-origin isolation headers when made with isolate=True."""

    def __init__(self, *args: Any, isolate: bool = False, **kwargs: Any) -> None:
        self.isolate = isolate  # set before the base class handles the request in its __init__
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        if self.isolate:
            for k, v in ISOLATION.items():
                self.send_header(k, v)
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(folder: Path, isolate: bool) -> Iterator[str]:
    handler = functools.partial(Handler, directory=str(folder), isolate=isolate)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def prompts(n: int) -> list[str]:
    lines = (ROOT / "assets" / "prompts" / "eval.txt").read_text(encoding="utf-8").splitlines()
    return [p.strip() for p in lines if p.strip()][:n]


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name:")), "unknown")


def decode(pg: Any, which: str, prompt: str, args: argparse.Namespace, errors: list[str]) -> dict[str, Any] | None:
    """One run from the page's form (greedy); the page's measurement of it, or None (and why in errors)."""
    pg.fill("#prompt", prompt)
    pg.select_option("#rule", "greedy")
    pg.fill("#gamma", str(args.gamma))
    pg.fill("#max-new", str(args.new_tokens))
    pg.fill("#confidence", str(args.confidence))
    pg.fill("#lookup", str(args.lookup_below))
    before = pg.evaluate("() => window.specvizLive.runCount")
    if not pg.evaluate(CLICK_JS, BUTTONS[which]):
        errors.append(f"{which}: the button was disabled")
        return None
    pg.wait_for_function(
        f"() => window.specvizLive.runCount > {before}", polling=250, timeout=args.decode_timeout * 1000
    )
    state = pg.evaluate(STATE_JS)
    errors += [f"{which}, page says: {m['text'][:200]}" for m in state["messages"] if m["level"] == "error"]
    r = state["runs"].get(which)
    if not r or r.get("promptIds") is None:
        errors.append(f"{which}: the run ended without a result")
        return None
    out = {
        "tokens": r["tokens"],
        "tok_per_s": r["tokensPerSecond"],
        "first_token_s": r["firstTokenMs"] / 1000,
        "first_to_last_s": r["firstToLastMs"] / 1000,
        "token_ids": r["tokenIds"],
    }
    if which == "speculative":
        out |= pg.evaluate(STEPS_JS) or {}
    return out


def measure(folder: Path, setup: str, texts: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with serve(folder, SETUPS[setup]) as origin, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1280, "height": 1000})
            pg.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            pg.on("console", lambda m: errors.append(f"console error: {m.text[:200]}") if m.type == "error" else None)
            t0 = time.monotonic()
            pg.goto(f"{origin}/index.html")
            pg.wait_for_function(READY_JS, polling=250, timeout=args.load_timeout * 1000)
            state = pg.evaluate(STATE_JS)
            if not state["ready"]:
                raise SystemExit(f"{setup}: the page did not load its models: {state['error']}")
            out: dict[str, Any] = {
                "isolation_headers": SETUPS[setup],
                "cross_origin_isolated": pg.evaluate("() => self.crossOriginIsolated"),
                "hardware_concurrency": pg.evaluate("() => navigator.hardwareConcurrency"),
                "backend": state["backend"],
                "page_note": (pg.text_content("#backend") or "").strip(),
                "ready_s": rnd(time.monotonic() - t0, 2),
                "page_load_ms": None if state["loadMs"] is None else round(state["loadMs"]),
            }
            print(f"[{setup}] {out['page_note']} Ready in {out['ready_s']} s.", flush=True)
            runs = []
            for k in range(args.rounds):
                order = ["speculative", "alone"] if k % 2 == 0 else ["alone", "speculative"]
                for i, text in enumerate(texts):
                    got = {w: decode(pg, w, text, args, errors) for w in order}
                    runs.append({"round": k, "prompt": i, "order": order} | got)
                    s, a = got["speculative"], got["alone"]
                    rates = [f"{w} {r['tok_per_s']:.2f}" if r and r["tok_per_s"] else f"{w} –" for w, r in got.items()]
                    same = s is not None and a is not None and s["token_ids"] == a["token_ids"]
                    print(f"[{setup}] round {k + 1}, prompt {i + 1}: {', '.join(rates)} tok/s, same {same}", flush=True)
        finally:
            browser.close()
    if SETUPS[setup] and not out["cross_origin_isolated"]:
        errors.append("served with the isolation headers, but the page is not cross-origin isolated")
    out["rows"] = [summarise(i, text, [r for r in runs if r["prompt"] == i]) for i, text in enumerate(texts)]
    out["mean"] = mean_row(out["rows"])
    out["runs"] = runs
    out["errors"] = errors
    return out


def med(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarise(i: int, text: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One prompt over its rounds: medians, and whether every run gave the same tokens."""
    spec = [r["speculative"] for r in runs if r["speculative"]]
    alone = [r["alone"] for r in runs if r["alone"]]
    s = med([r["tok_per_s"] for r in spec])
    a = med([r["tok_per_s"] for r in alone])
    outputs = {json.dumps(r["token_ids"]) for r in spec + alone}
    return {
        "prompt": text,
        "spec_tok_per_s": rnd(s, 2),
        "alone_tok_per_s": rnd(a, 2),
        "ratio": rnd(s / a, 3) if s and a else None,
        "steps": med([r.get("steps") for r in spec]),
        "tokens_per_step": rnd(med([r["tokens"] / r["steps"] for r in spec if r.get("steps")]), 2),
        "spec_first_token_s": rnd(med([r["first_token_s"] for r in spec]), 2),
        "alone_first_token_s": rnd(med([r["first_token_s"] for r in alone]), 2),
        "tokens": med([r["tokens"] for r in spec + alone]),
        "identical": bool(spec) and len(spec) == len(alone) == len(runs) and len(outputs) == 1,
    }


def mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float | None:
        xs = [r[key] for r in rows if r[key] is not None]
        return round(statistics.fmean(xs), 3) if xs else None

    keys = ("spec_tok_per_s", "alone_tok_per_s", "ratio", "steps", "spec_first_token_s", "alone_first_token_s")
    return {k: mean(k) for k in keys} | {"identical": f"{sum(r['identical'] for r in rows)}/{len(rows)}"}


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "–" if x is None else format(x, spec)


def table(res: dict[str, Any]) -> str:
    lines = [
        "| prompt | speculative tok/s | alone tok/s | ratio | steps | first token (spec / alone) | same tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        name = r["prompt"] if len(r["prompt"]) <= 40 else r["prompt"][:39] + "…"
        lines.append(
            f"| {name} | {fmt(r['spec_tok_per_s'])} | {fmt(r['alone_tok_per_s'])} | {fmt(r['ratio'])} | "
            f"{fmt(r['steps'], 'g')} | {fmt(r['spec_first_token_s'], '.1f')} s / {fmt(r['alone_first_token_s'], '.2f')} s"
            f" | {'yes' if r['identical'] else 'NO'} |"
        )
    m = res["mean"]
    lines.append(
        f"| mean | {fmt(m['spec_tok_per_s'])} | {fmt(m['alone_tok_per_s'])} | **{fmt(m['ratio'])}×** | "
        f"{fmt(m['steps'], '.1f')} | {fmt(m['spec_first_token_s'], '.1f')} s / {fmt(m['alone_first_token_s'], '.2f')} s"
        f" | {m['identical']} |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="the export-live folder, reused if it holds one (default: a temp dir)")
    ap.add_argument("--prompts", type=int, default=3, help="the first N prompts of assets/prompts/eval.txt")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--gamma", type=int, default=4, help="drafts per step")
    ap.add_argument("--confidence", type=float, default=0.4, help="the page's stop below q (0: off)")
    ap.add_argument("--lookup-below", type=float, default=0.7, help="the page's copy below q (0: off)")
    ap.add_argument("--threads", choices=["1", "isolated", "both"], default="both")
    ap.add_argument("--rounds", type=int, default=1, help="each round runs every prompt both ways")
    ap.add_argument("--load-timeout", type=int, default=300, help="seconds the page may take to load its models")
    ap.add_argument("--decode-timeout", type=int, default=600, help="seconds one run may take")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing (make browser)")
    if args.prompts < 1 or args.rounds < 1 or args.new_tokens < 1:
        raise SystemExit("--prompts, --rounds and --new-tokens must be at least 1")

    tmp = None if args.out else Path(tempfile.mkdtemp(prefix="browser-speed-"))
    folder = (args.out if tmp is None else tmp / "site").expanduser().absolute()
    try:
        if (folder / "manifest.json").is_file():
            print(f"reusing the export in {folder}", flush=True)
        else:
            print(f"exporting {folder} …", flush=True)
            cmd = [sys.executable, "-m", "specviz", "export-live", "-o", str(folder)]
            subprocess.run(cmd, cwd=ROOT, check=True)
        manifest = json.loads((folder / "manifest.json").read_text())
        texts = prompts(args.prompts)
        started = time.time()
        report: dict[str, Any] = {
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
            "cpu": cpu_model(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
            "chromium": subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True).stdout.strip(),
            "settings": {
                "rule": "greedy",
                "gamma": args.gamma,
                "confidence": args.confidence,
                "lookup_below": args.lookup_below,
                "new_tokens": args.new_tokens,
                "prompts": texts,
                "rounds": args.rounds,
                "folder": str(folder),
            },
            "models": {
                k: {"name": manifest[k]["name"], "quant": manifest[k]["quant"], "bytes": manifest[k]["bytes"]}
                for k in ("draft", "target")
            },
            "measure": "the page's own: tokens after the first step's, per second from the first token to the last",
            "setups": {},
        }
        print(f"{report['date']}; {report['cpu']}; load average {report['load_avg_at_start']}", flush=True)
        for setup in ["1", "isolated"] if args.threads == "both" else [args.threads]:
            report["setups"][setup] = measure(folder, setup, texts, args)
        report["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(f"{report['date']} — {report['cpu']} ({report['machine']}), {report['chromium']}")
    print(
        f"load average {report['load_avg_at_start']} → {report['load_avg_at_end']}; greedy, γ {args.gamma}, stop below q {args.confidence}, copy below q {args.lookup_below}, "
        f"{args.new_tokens} new tokens, {args.rounds} round(s)"
    )
    for setup, res in report["setups"].items():
        print()
        iso = "COOP/COEP headers" if res["isolation_headers"] else "no isolation headers"
        print(f"threads {setup} ({iso}, crossOriginIsolated {res['cross_origin_isolated']}): {res['page_note']}")
        print(f"page ready in {res['ready_s']} s (the page's own load time {res['page_load_ms']} ms)")
        print(table(res))
        for e in res["errors"]:
            print(f"  error: {e}")
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        print(f"\nwrote {args.json_out}")
    bad = [e for res in report["setups"].values() for e in res["errors"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
