"""Making the browser folder from the app: `python -m specviz export-live` in a background thread.

The "Live in your browser" page serves a folder that `python -m specviz export-live -o static/live`
makes (docs/BROWSER.md). Where it is missing, the page can start that command here: one export at a
time for the whole server (a lock, whatever the number of sessions), in a child process so that
torch's export and its memory stay out of the server. The command writes the folder beside its
place and renames it in when complete (specviz.export.bundle), so a half-made folder is never
served. The page polls `state()` for the command's last lines and the outcome.

No Streamlit here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["ExportJob", "JobState", "folder_ready", "job_for"]

# what a served folder must hold for the page to work (the models are named by its manifest)
NEEDED = ("index.html", "app.js", "manifest.json", "vendor/VERSIONS.txt")
TAIL_LINES = 12
# an export takes both cores of a small server for a while: one at a time, whatever the folder
_EXPORTING = threading.Lock()


def folder_ready(folder: Path) -> bool:
    """True when `folder` holds a complete export (its page, manifest, vendored libraries, models)."""
    if not all((folder / name).is_file() for name in NEEDED):
        return False
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        return all((folder / manifest[role]["file"]).is_file() for role in ("target", "draft"))
    except (OSError, ValueError, KeyError, TypeError):
        return False


@dataclass(frozen=True)
class JobState:
    """A snapshot for the page: idle (never started), running, done, failed; the command's last lines."""

    status: Literal["idle", "running", "done", "failed"]
    lines: tuple[str, ...]
    seconds: float
    error: str | None


class ExportJob:
    """One export into `folder`, run at most once at a time. `command` defaults to the real one."""

    def __init__(self, folder: Path, command: list[str] | None = None) -> None:
        self.folder = Path(folder)
        self._command = command
        self._lock = threading.Lock()
        self._status: Literal["idle", "running", "done", "failed"] = "idle"
        self._lines: deque[str] = deque(maxlen=TAIL_LINES)
        self._error: str | None = None
        self._started = 0.0
        self._ended = 0.0

    def start(self) -> bool:
        """Start the export unless one is running (this one or another); False when one was."""
        if not _EXPORTING.acquire(blocking=False):
            return False
        with self._lock:
            self._status, self._error, self._started, self._ended = "running", None, time.monotonic(), 0.0
            self._lines.clear()
        threading.Thread(target=self._run, name="specviz-export-live", daemon=True).start()
        return True

    def state(self) -> JobState:
        with self._lock:
            end = self._ended or time.monotonic()
            seconds = end - self._started if self._started else 0.0
            return JobState(self._status, tuple(self._lines), seconds, self._error)

    def _finish(self, error: str | None) -> None:
        with self._lock:
            self._status, self._error, self._ended = ("failed" if error else "done"), error, time.monotonic()
        _EXPORTING.release()

    def _run(self) -> None:
        error: str | None = "the export stopped unexpectedly"
        try:
            error = self._export()
            if error is None and not folder_ready(self.folder):
                error = "the export finished but the folder is incomplete (no manifest, page or models)"
        finally:
            self._finish(error)  # always: the lock must not stay held

    def _export(self) -> str | None:
        """Run the command, keeping its last lines; the error to show, or None."""
        out = self.folder
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot write {out.parent}: {exc.strerror or exc}"
        cmd = self._command or [sys.executable, "-m", "specviz", "export-live", "-o", str(out)]
        cmd = [str(out) if part == "{out}" else part for part in cmd]
        root = Path(__file__).resolve().parents[2]
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=root,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},  # its progress lines as they come, not at exit
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            return f"could not start the export: {exc.strerror or exc}"
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip():
                with self._lock:
                    self._lines.append(line.rstrip()[:300])
        rc = proc.wait()
        if rc == 0:
            return None
        last = self._lines[-1] if self._lines else "no output"
        return f"the export failed (exit status {rc}): {last}"


_JOBS: dict[Path, ExportJob] = {}
_JOBS_LOCK = threading.Lock()


def job_for(folder: Path) -> ExportJob:
    """The one job of this server for `folder` (every session sees the same progress)."""
    key = Path(folder).resolve()
    with _JOBS_LOCK:
        if key not in _JOBS:
            _JOBS[key] = ExportJob(key)
        return _JOBS[key]
