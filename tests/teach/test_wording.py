"""The exercises' quoting: tokens in ⟨⟩ made visible, text in “”, integer options in order."""

from __future__ import annotations

import random

from specviz.teach.wording import numeric_options, position_word, quote_text, quote_token, quote_tokens


def test_quotes_make_whitespace_visible_and_mark_their_kind():
    assert quote_token(" the") == "⟨␣the⟩"
    assert quote_tokens([]) == "(nothing)"
    assert quote_text("…␣the") == "“…␣the”"
    assert position_word(0) == "i" and position_word(2) == "i+2"


def test_numeric_options_hold_the_answer_in_increasing_order():
    for seed in range(20):
        options, right = numeric_options(random.Random(seed), 3, [0, 1, 2, 3, 4, 5, -1])
        values = [int(o) for o in options]
        assert values == sorted(values) and values[right] == 3 and min(values) >= 0 and len(values) == 4
