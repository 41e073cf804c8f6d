"""Live in your browser: the exported pair decodes in each student's own browser tab."""

from specviz.ui import browser, common


def browser_page() -> None:
    common.page_start("Live in your browser")
    browser.browser_view()


browser_page()
