"""specviz.figures.compare: divergence, outputs on aligned rows, progress, the printable summary; escaped."""

from __future__ import annotations

import html
import json

import pytest

from specviz import figures as fg
from specviz.figures import compare as fcompare
from tests.figkit import HOSTILE, evil_trace


def test_divergence():
    assert fcompare.divergence([1, 2, 3], [1, 2, 3]) is None
    assert fcompare.divergence([1, 2, 3], [1, 5, 3]) == 1
    assert fcompare.divergence([1, 2], [1, 2, 3]) == 2
    assert fcompare.divergence([], []) is None


def test_hostile_text_is_escaped_in_every_figure():
    trace = evil_trace()
    prov = fg.provenance(trace)
    figs = [
        fcompare.compare_timeline_figure([(HOSTILE, prov), ("b", prov)], 0, 30, [None, 1], (HOSTILE, [HOSTILE] * 5)),
        fcompare.compare_progress_figure([(HOSTILE, trace), ("b", trace)]),
    ]
    for fig in figs:
        text = json.dumps(fig.to_plotly_json(), ensure_ascii=False)
        assert "<script>" not in text and "&lt;script&gt;" in text


def test_compare_timeline_rows_and_reference():
    trace = fg.toy_trace()
    prov = fg.provenance(trace)
    fig = fcompare.compare_timeline_figure(
        [("A", prov), ("B", prov)], 0, 30, [None, None, 2], ("alone", ["x"] * len(prov))
    )
    assert list(fig.layout.yaxis.ticktext) == ["alone", "A", "B"]
    assert any(t.name == "evaluation model alone" for t in fig.data)
    assert len(fig.layout.shapes) == 1 and fig.layout.shapes[0].y0 == pytest.approx(2 - 0.45)


def test_summary_html_escapes_trace_text():
    page = fcompare.summary_html(evil_trace(), HOSTILE)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.startswith("<!doctype html>") and "n_accepted per step" in page


def test_compare_timeline_shows_long_tokens_whole():
    """Public report: Compare cut tokens like "␣specif…" (8 characters in a 30-position window)."""
    prov = [fg.OutTok(" specification", 1, "accepted", 0), fg.OutTok(" a", 2, "correction", 0)]
    fig = fcompare.compare_timeline_figure([("A", prov)])
    shown = [t for tr in fig.data for t in tr.text]
    assert "␣specification" in shown and not any("…" in t for t in shown)
    assert fig.layout.xaxis.range[1] - fig.layout.xaxis.range[0] <= fcompare.COMPARE_WIDTH + 1


def test_two_traces_are_drawn_in_the_series_colours():
    from specviz.figures.palette import OUTCOME_COLORS, SERIES

    toy = fg.toy_trace()
    fig = fcompare.compare_progress_figure([("A", toy), ("B", toy)])
    lines = {t.name: t.line.color for t in fig.data if t.name in ("A", "B")}
    assert lines == {"A": SERIES[0], "B": SERIES[1]} and not set(lines.values()) & OUTCOME_COLORS


def test_the_ideal_speedup_row_names_its_assumption_beside_the_measured_time():
    from specviz.core import theory

    toy = fg.toy_trace()
    m = theory.measure(toy, "toy")
    words = fcompare.ideal_words(m)
    assert words.startswith(f"{m.ideal_speedup:.2f}× {theory.IDEAL_WORDS}")
    assert f"measured: {m.ms_per_token:.1f} ms per token" in words
    assert html.escape(words) in fcompare.summary_html(toy, "toy")
    untimed = json.loads(json.dumps(toy))
    del untimed["steps"][0]["timing_ms"]
    assert fcompare.ideal_words(theory.measure(untimed)) == "—"


def test_a_trees_ideal_speedup_says_the_formula_is_a_chains_and_counts_the_positions_scored():
    """Review: Compare quoted "a pass over γ+1 positions" beside a tree whose passes scored more."""
    from pathlib import Path

    from specviz.core import theory
    from specviz.trace import load

    trace = load(Path(__file__).resolve().parents[2] / "assets" / "traces" / "tree-greedy.json.gz")
    m = theory.measure(trace, "tree")
    assert m.tree and m.positions_per_pass > m.gamma + 1
    words = fcompare.ideal_words(m)
    assert "a chain as deep as this tree" in words and f"scored {m.positions_per_pass:.1f}" in words
    chain = theory.measure(fg.toy_trace(), "toy")
    assert not chain.tree and chain.positions_per_pass == pytest.approx(chain.mean_drafts + 1)


def test_more_tokens_per_step_yet_slower_per_token_is_explained():
    """Newcomer review: Compare showed the tree's higher ideal speedup beside a slower ms per token, unexplained."""
    import dataclasses

    from specviz.core import theory

    chain = theory.measure(fg.toy_trace(), "chain")
    assert chain.ms_per_token is not None
    tree = dataclasses.replace(chain, name="tree", tokens_per_step=chain.tokens_per_step + 0.5,
                               ms_per_token=chain.ms_per_token * 1.1)  # fmt: skip
    words = fcompare.more_tokens_slower_words(chain, tree)
    assert words is not None and words.startswith("B makes more tokens per step") and "so A was faster" in words
    assert fcompare.more_tokens_slower_words(tree, chain).startswith("A makes more tokens per step")
    faster = dataclasses.replace(tree, ms_per_token=chain.ms_per_token * 0.9)  # more tokens and faster: nothing to say
    assert fcompare.more_tokens_slower_words(chain, faster) is None
    assert fcompare.more_tokens_slower_words(chain, chain) is None
