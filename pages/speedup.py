"""The speedup lab: the theory's curves, measured traces on them, a fixed budget, a live sweep, the glossary."""

from specviz import learn_ui, ui


def speedup_page() -> None:
    ui.page_start("Speedup lab")
    learn_ui.speedup_lab()


speedup_page()
