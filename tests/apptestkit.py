"""AppTest helpers shared by the page tests: open a page through app.py's router, fail on any exception,
read what a page shows, fill in the Live page's form for the tiny pair."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from specviz.teach.player import unpack
from specviz.ui import live_form

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_page(page: str | None = None, timeout: float = 60, **query: str) -> AppTest:
    """Run app.py (the router) with the query, then switch to `page` (a pages/ file) if given."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params.update(query)
    ok(at.run())
    if page is not None:
        ok(at.switch_page(page).run())
    return at


def plain(md: str) -> str:
    """Markdown shown as the reader sees it: the backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", md)


def player(at: AppTest) -> tuple[dict[str, Any], dict[str, Any]]:
    """The step-through player on the page: what it was mounted with ({key, trace, step, plotly,
    packed}) and its unpacked data (specviz.teach.player.player_data)."""
    el = next(e for e in at.get("bidi_component") if e.proto.component_name == "specviz.teach.player")
    mount = json.loads(el.proto.json)
    return mount, unpack(mount["packed"])


def step_title(at: AppTest) -> str:
    """The heading of the step the player opens at."""
    mount, data = player(at)
    return str(data["steps"][mount["step"]]["heading"])


def button(at: AppTest, label: str) -> Button:
    return next(b for b in at.button if b.label == label)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def live_with(
    model_dirs: tuple[Path, Path], max_new: int = 12, rule: str = "greedy", target: str | None = None
) -> AppTest:
    """The Live page set up for the tiny pair (or another target), greedy at T = 0 on raw text."""
    at = open_page("pages/live.py", timeout=180)
    ok(at.selectbox(key="live_preset").set_value(live_form.CUSTOM).run())
    at.text_input(key="live_target").input(target or str(model_dirs[0]))
    at.text_input(key="live_draft").input(str(model_dirs[1]))
    at.radio(key="live_drafter").set_value(live_form.DRAFT_MODEL)
    at.radio(key="live_chat").set_value("raw text")
    at.text_area(key="live_prompt").input("the cat sat on the mat the cat")
    at.selectbox(key="live_rule").set_value(rule)
    at.slider(key="live_temperature").set_value(0.0)
    at.number_input(key="live_max_new").set_value(max_new)
    return ok(at.run())
