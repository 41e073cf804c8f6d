"""Statistics: acceptance, tokens per step against the theory, the cost ratio, and the bottleneck."""

from specviz import ui


def stats_page() -> None:
    ui.page_start("Statistics")
    choice = ui.choose_trace("stats")
    if choice is None:
        return
    ui.show_stats(choice)


stats_page()
