"""Compare: two traces side by side; where the outputs part, tokens per step and time per token."""

from specviz import learn_ui, ui


def compare_page() -> None:
    ui.page_start("Compare two runs")
    learn_ui.compare_view()


compare_page()
