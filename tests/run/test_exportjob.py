"""The export started from the app (specviz/run/exportjob.py): one at a time, a failure said in words, an
incomplete folder not taken for a finished one, the command's last lines kept for the page."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from specviz.run import exportjob

# a stand-in for `python -m specviz export-live -o OUT`: writes what a complete folder holds
FAKE = """
import json, pathlib, sys, time
out = pathlib.Path(sys.argv[1])
print("exporting the evaluation model", flush=True)
time.sleep(float(sys.argv[2]))
for name in ("index.html", "app.js", "vendor/VERSIONS.txt", "models/target.onnx", "models/draft.onnx"):
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    (out / name).write_text("x")
(out / "manifest.json").write_text(json.dumps({"target": {"file": "models/target.onnx"}, "draft": {"file": "models/draft.onnx"}}))
print("done", flush=True)
"""


def _wait(job: exportjob.ExportJob, timeout: float = 30) -> exportjob.JobState:
    deadline = time.monotonic() + timeout
    while (state := job.state()).status == "running":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def test_a_finished_export_is_ready(tmp_path: Path):
    folder = tmp_path / "static" / "live"
    job = exportjob.ExportJob(folder, [sys.executable, "-c", FAKE, "{out}", "0.3"])
    assert job.state().status == "idle" and not exportjob.folder_ready(folder)
    assert job.start()
    assert job.state().status == "running"
    assert not job.start()  # one at a time
    state = _wait(job)
    assert state.status == "done" and state.error is None, state
    assert state.lines == ("exporting the evaluation model", "done")
    assert exportjob.folder_ready(folder)


def test_one_export_at_a_time_across_folders(tmp_path: Path):
    slow = exportjob.ExportJob(tmp_path / "a", [sys.executable, "-c", FAKE, "{out}", "0.5"])
    other = exportjob.ExportJob(tmp_path / "b", [sys.executable, "-c", FAKE, "{out}", "0"])
    assert slow.start()
    assert not other.start() and other.state().status == "idle"
    _wait(slow)
    assert other.start() and _wait(other).status == "done"


def test_a_failed_export_says_why_and_leaves_the_old_folder(tmp_path: Path):
    folder = tmp_path / "live"
    folder.mkdir()
    (folder / "keep.txt").write_text("old")
    job = exportjob.ExportJob(folder, [sys.executable, "-c", "print('no onnx here'); raise SystemExit(3)", "{out}"])
    assert job.start()
    state = _wait(job)
    assert state.status == "failed" and "exit status 3" in (state.error or "") and "no onnx here" in state.error
    assert (folder / "keep.txt").read_text() == "old"
    incomplete = exportjob.ExportJob(folder, [sys.executable, "-c", "pass", "{out}"])
    assert incomplete.start() and "incomplete" in (_wait(incomplete).error or "")
    missing = exportjob.ExportJob(folder, ["/nonexistent/specviz-export"])
    assert missing.start() and "could not start" in (_wait(missing).error or "")


def test_folder_ready_needs_the_manifests_models(tmp_path: Path):
    for name in exportjob.NEEDED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert not exportjob.folder_ready(tmp_path)  # a manifest without models
    (tmp_path / "manifest.json").write_text(json.dumps({"target": {"file": "t.onnx"}, "draft": {"file": "d.onnx"}}))
    (tmp_path / "t.onnx").write_text("x")
    assert not exportjob.folder_ready(tmp_path)
    (tmp_path / "d.onnx").write_text("x")
    assert exportjob.folder_ready(tmp_path)


def test_every_session_sees_the_same_job(tmp_path: Path):
    jobs: list[exportjob.ExportJob] = []
    threads = [threading.Thread(target=lambda: jobs.append(exportjob.job_for(tmp_path / "live"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(j) for j in jobs}) == 1
