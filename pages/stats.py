"""Statistics: acceptance, tokens per step against the theory, the cost ratio, and the bottleneck."""

from specviz.ui import common, engine, stats, traces


def stats_page() -> None:
    common.page_start("Statistics")
    choice = traces.choose_trace("stats")
    if choice is not None:
        stats.show_stats(choice)
    engine.engine_section("stats")


stats_page()
