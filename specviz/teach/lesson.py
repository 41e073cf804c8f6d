"""Lesson files: one self-contained HTML file that plays one or more traces offline.

The file holds the player (specviz/assets/player), Plotly.js (from the installed `plotly`
package) and each trace's player data (specviz.teach.player, gzip + base64), all inline: it opens from
file://, on a phone or behind a firewall, and asks no network for anything. A Content Security
Policy in the file forbids every fetch, so even a bug could not reach out.

Trace text never becomes markup: the data is base64 (no character of it can end a <script>),
the names are JSON with <, > and & escaped, the title is HTML-escaped, and the player writes
text with textContent only. No Streamlit here.
"""

from __future__ import annotations

import base64
import hashlib
import html
import importlib.resources
import json
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

from specviz import figures as fg
from specviz.teach import player
from specviz.trace import Trace

__all__ = ["ASSETS", "lesson_html", "player_css", "player_js", "plotly_js", "write_lesson"]

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "player"
# fetches, frames, forms, plugins: none; style inline; script only the file's own three blocks, by hash
CSP = (
    "default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data: blob:; "
    "font-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'"
)


def player_js() -> str:
    """The player's script (plain script; defines specvizPlayer and specvizUnpack)."""
    return (ASSETS / "player.js").read_text(encoding="utf-8")


def player_css() -> str:
    return (ASSETS / "player.css").read_text(encoding="utf-8")


def plotly_js() -> str:
    """Plotly.js as the installed `plotly` package ships it (plotly 7.1.0: Plotly.js 4.1.1)."""
    return (importlib.resources.files("plotly") / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


def _script(code: str) -> str:
    """Inline script text that cannot end its <script> element early."""
    return re.sub(r"</(script)", r"<\\/\1", code, flags=re.IGNORECASE)


def _json(value: object) -> str:
    """JSON for inside a <script>: <, > and & as \\u escapes (and non-ASCII escaped too)."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def lesson_html(traces: Sequence[tuple[str, Trace]], title: str | None = None) -> str:
    """The lesson file's text for one or more (name, trace) pairs; a chooser appears for several.
    `#step=N` (or `#trace=I&step=N` with several traces) in the file's address opens that step.

    Raises ValueError for no traces, or a trace whose numbers are not finite (JSON has no NaN).
    """
    if not traces:
        raise ValueError("a lesson needs at least one trace")
    sources = []
    for raw, trace in traces:
        name = fg.literal(raw, 120)  # a file name may carry bidi or control characters: shown, not applied
        meta = f"{name} · {player.meta_line(trace)}"
        sources.append({"name": name, "packed": player.pack(player.player_data(trace, name, meta_line=meta))})
    heading = fg.literal(title or (f"specviz lesson: {traces[0][0]}" if len(traces) == 1 else "specviz lesson"), 200)
    boot = BOOT.replace("SOURCES", _json(sources))
    scripts = [_script(plotly_js()), _script(player_js()), _script(boot)]
    hashes = " ".join(f"'sha256-{_sha256(chr(10) + code + chr(10))}'" for code in scripts)  # as inlined below
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP.format(hashes=hashes)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(heading)}</title>\n"
        f"<style>\nbody {{ margin: 1rem 2rem; background: white; }}\n{player_css()}\n</style>\n"
        "</head>\n<body>\n"
        f'<h1 style="font-family: system-ui, sans-serif; font-size: 1.6rem">{html.escape(heading)}</h1>\n'
        '<main id="svz-root" class="svz">Loading… (this page needs JavaScript)</main>\n'
        + "".join(f"<script>\n{code}\n</script>\n" for code in scripts)
        + "</body>\n</html>\n"
    )


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# starts the player on the file's traces, at the step its address names; follows the address after
BOOT = """(function () {
  const sources = SOURCES;
  const at = (key) => {
    const m = new RegExp(key + "=(\\\\d+)").exec(window.location.hash);
    return m ? Number(m[1]) : 0;
  };
  const root = document.getElementById("svz-root");
  const player = specvizPlayer(root, sources, { trace: at("trace"), step: at("step"), link: "hash" });
  window.addEventListener("hashchange", () => {
    if (at("trace") !== player.state.source) player.open(at("trace"), at("step"));
    else player.go(at("step"));
  });
})();"""


def write_lesson(traces: Sequence[tuple[str, Trace]], path: str | os.PathLike[str], title: str | None = None) -> int:
    """Write the lesson file atomically (a failed write leaves no partial file); returns its size in bytes."""
    text = lesson_html(traces, title).encode("utf-8")
    out = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".lesson-", suffix=".html", dir=out.parent if str(out.parent) else ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text)
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(f.fileno(), 0o666 & ~umask)  # readable like any new file (mkstemp makes it 0600)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(text)
