"""Step-through: one step of a trace at a time, in words and pictures; ?trace=NAME&step=N links here."""

from specviz.ui import common, replay


def replay_page() -> None:
    common.page_start("Step through a trace")
    replay.replay_view()


replay_page()
