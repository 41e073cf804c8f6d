"""The Live page's settings form (specviz/ui/live_form.py): what its choices say, and that it keeps them."""

from __future__ import annotations

from specviz.ui.live_form import TREE_CHOICES, tree_choice_words
from tests.apptestkit import ok, open_page


def test_every_draft_shape_choice_reads_as_words():
    words = [tree_choice_words(t) for t in TREE_CHOICES]
    assert words[:2] == ["chain of γ drafts", "sized to this machine (a tree or a chain)"]
    assert words[2] == "tree 2·2·1·1 (14 nodes)" and words[-1] == "dynamic tree, 16 nodes (EAGLE-2)"


def test_the_settings_are_kept_through_a_visit_to_another_page():
    # a student runs, opens the run in Step through, comes back: the prompt and settings they typed are still there
    at = open_page("pages/live.py")
    at.text_area(key="live_prompt").input("Why is the sky blue?")
    at.slider(key="live_gamma").set_value(7)
    at.number_input(key="live_confidence").set_value(0.25)
    ok(at.run())
    ok(at.switch_page("pages/replay.py").run())
    ok(at.switch_page("pages/live.py").run())
    assert at.text_area(key="live_prompt").value == "Why is the sky blue?"
    assert at.slider(key="live_gamma").value == 7
    assert at.number_input(key="live_confidence").value == 0.25
