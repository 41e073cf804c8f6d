"""Compare: two traces side by side; where the outputs part, tokens per step and time per token."""

from specviz.ui import common, compare


def compare_page() -> None:
    common.page_start("Compare two runs")
    compare.compare_view()


compare_page()
