"""AppTest helpers shared by the page tests: open a page through app.py's router, fail on any exception."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

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
