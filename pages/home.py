"""Home: speculative decoding on one screen, one real step drawn, and the way into every page."""

from specviz.ui import common, home


def home_page() -> None:
    common.page_start("Speculative decoding, one step at a time")
    home.home_view()


home_page()
