"""Statistics: acceptance, tokens per step against the theory, the cost ratio, and the bottleneck."""

from specviz import engine_ui, ui


def stats_page() -> None:
    ui.page_start("Statistics")
    choice = ui.choose_trace("stats")
    if choice is not None:
        ui.show_stats(choice)
    engine_ui.engine_section("stats")


stats_page()
