"""The Home page (specviz/ui/home.py) with AppTest: one real step drawn, and the way into the pages."""

from __future__ import annotations

from specviz.ui import traces
from tests.apptestkit import open_page, plain

SAMPLES = list(traces.list_samples())


def test_home_renders_a_real_step_and_links_every_page():
    at = open_page()
    assert at.title[0].value.startswith("Speculative decoding")
    assert len(at.get("plotly_chart")) == 1
    links = {link.proto.page: link.proto.query_string for link in at.get("page_link")}
    assert set(links) == {"live", "replay", "stats", "exercises", "speedup", "compare"}
    if SAMPLES:
        assert links["replay"].startswith("trace=")  # straight to the drawn step
    # the first link on the page, beside the drawn step: where a first-time visitor begins
    first = at.get("page_link")[0].proto
    assert first.page == "replay" and first.label.startswith("**Start here")
    assert any(plain(i.value).startswith("n_accepted = ") for i in at.info)
