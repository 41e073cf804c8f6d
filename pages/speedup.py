"""The speedup lab: the theory's curves, measured traces on them, a fixed budget, a live sweep, the glossary."""

from specviz.ui import common, speedup


def speedup_page() -> None:
    common.page_start("Speedup lab")
    speedup.speedup_lab()


speedup_page()
