"""specviz.figures.text and .palette: token text made visible and escaped, the end mark, presentation mode."""

from __future__ import annotations

import pytest

from specviz import figures as fg
from tests.figkit import HOSTILE


def test_visible_whitespace_and_controls():
    assert fg.visible(" the\n\t") == "␣the⏎⇥"
    assert fg.visible("") == "∅"
    assert fg.visible("a\x00b") == "a\\u0000b"
    assert fg.visible("\u200b") == "\\u200b"  # invisible format characters are shown too
    assert fg.visible("héllo") == "héllo"


def test_esc_escapes_html_and_truncates():
    assert fg.esc(HOSTILE) == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert fg.esc("a&b") == "a&amp;b"
    assert fg.esc("abcdefghij", 5) == "abcd…"


def test_an_end_of_turn_token_reads_as_a_marked_end():
    """Public report: `<|im_end|>` was printed in the output text."""
    trace = fg.toy_trace()
    eos = trace["steps"][-1]["next"]
    trace["meta"]["eos_token_ids"] = [eos["token_id"]]
    eos["token"] = "<|im_end|>"
    assert fg.readable_output("Hi!<|im_end|>", trace) == "Hi!" + fg.END_MARK
    assert fg.end_tokens(trace) == ["<|im_end|>"]


def test_presented_grows_fonts_and_the_margins_that_hold_them():
    """Presentation mode: titles in a margin that kept its size were cut off at the chart's edge."""
    fig = fg.distribution_figure(fg.toy_trace(), 0)
    big = fg.presented(fig, 1.5)
    assert big.layout.font.size == pytest.approx(1.5 * (fig.layout.font.size or 12))
    for side in ("l", "r", "t", "b"):
        assert getattr(big.layout.margin, side) == pytest.approx(1.5 * getattr(fig.layout.margin, side))
    assert big.layout.height > fig.layout.height


def test_a_template_end_token_is_marked_only_where_the_text_ends():
    """Review: '</s>' inside generated HTML is text, not an end of turn."""
    from specviz import figures as fg

    trace = {"meta": {}, "steps": []}
    assert fg.readable_output("Done.<|im_end|>", trace) == "Done." + fg.END_MARK
    assert fg.readable_output("<s>bold</s> text", trace) == "<s>bold</s> text"
