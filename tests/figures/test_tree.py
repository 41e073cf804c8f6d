"""specviz.figures.tree: the layout, the tree panel's data, the mask, the words, the sizing chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from specviz import figures as fg
from specviz.core.decoder import DecodeConfig
from specviz.core.rules import make_rule
from specviz.core.tree import TreeShape
from specviz.core.warp import Sampling
from specviz.drafters.model import ModelDrafter
from specviz.figures import tree as ftree
from specviz.figures.palette import COPIED_LABEL, LABELS
from specviz.run.record import Recording
from tests.core.test_decoder import PROMPT
from tests.figkit import HOSTILE


@pytest.fixture(scope="module")
def tree_trace(target, draft_lm):
    cfg = DecodeConfig(
        rule=make_rule("sampling"), sampling=Sampling(1.0), max_new_tokens=30, seed=4, tree=TreeShape.parse("3,2")
    )
    return Recording(target, ModelDrafter(draft_lm, target.vocab_size), "", cfg, prompt_ids=PROMPT).run()


def test_tree_layout_puts_depth_on_x_and_parents_between_their_children():
    x, y = ftree.tree_layout([-1, -1, 0, 0, 1])
    assert x == [1, 1, 2, 2, 2]
    assert y[0] == pytest.approx((y[2] + y[3]) / 2) and y[2] != y[3]
    assert y[-1] == pytest.approx((y[0] + y[1]) / 2)  # the root


def test_a_chain_step_reads_as_a_one_branch_tree():
    step = fg.toy_trace()["steps"][0]
    nodes, path = ftree.step_nodes(step)
    assert [nd["parent"] for nd in nodes] == list(range(-1, len(nodes) - 1))
    assert path == list(range(step["n_accepted"]))


def test_tree_figure_marks_every_node_with_its_decision(tree_trace):
    k = next(i for i, s in enumerate(tree_trace["steps"]) if len(s["tree"]["nodes"]) > 3)
    step = tree_trace["steps"][k]
    fig = ftree.tree_figure(tree_trace, k)
    shown = {t.name: len(t.x) for t in fig.data if t.name in fg.LABELS.values()}
    kinds = [ftree.node_kind(nd) for nd in step["tree"]["nodes"]]
    for kind in ("accepted", "rejected", "unevaluated"):
        assert shown.get(fg.LABELS[kind], 0) == kinds.count(kind)
    thick = [t for t in fig.data if t.mode == "lines" and t.line.width == 4]
    assert len(thick) == len(step["tree"]["path"])
    mask = ftree.tree_mask_figure(tree_trace, k)
    z = mask.data[0].z
    n = len(step["tree"]["nodes"])
    assert len(z) == n + 1 and all(row[0] == 1 and row[1] == 1 for row in z)
    for j, nd in enumerate(step["tree"]["nodes"]):  # a node sees its parent, never a sibling
        if nd["parent"] >= 0:
            assert z[1 + j][2 + nd["parent"]] == 1
        assert sum(z[1 + j][2:]) == nd["depth"]
    assert "one pass" in ftree.tree_words(tree_trace, k)
    assert "drafted trees" in ftree.tree_stats_words(tree_trace)
    assert ftree.tree_stats_words(fg.toy_trace()) == ""


def test_tree_figures_escape_token_text(tree_trace):
    evil = json.loads(json.dumps(tree_trace))
    for s in evil["steps"]:
        for nd in s["tree"]["nodes"]:
            nd["token"] = HOSTILE
    for fig in (ftree.tree_figure(evil, 0), ftree.tree_mask_figure(evil, 0)):
        text = json.dumps(fig.to_plotly_json(), ensure_ascii=False)
        assert "<script>" not in text and "&lt;script&gt;" in text


def test_the_step_words_say_a_tree_was_drafted(tree_trace):
    k = next(i for i, s in enumerate(tree_trace["steps"]) if len(s["tree"]["nodes"]) > 3)
    first = fg.describe_step(tree_trace, k)[0]
    assert f"a tree of {len(tree_trace['steps'][k]['tree']['nodes'])} candidates" in first
    assert "line the rule walked" in first


def test_a_percent_in_a_token_is_not_plotly_template_syntax() -> None:
    """A hovertemplate reads %{…}: a token "%{x}" must show as typed, not as the point's x."""
    from specviz.figures.tree import tree_spec
    from specviz.trace import load

    trace = load(Path(__file__).resolve().parents[2] / "assets" / "traces" / "tree-sampling.json.gz")
    k = next(i for i, s in enumerate(trace["steps"]) if s.get("next"))
    trace["steps"][k]["next"]["token"] = "%{x}"
    hovers = [t.get("hovertemplate", "") for t in tree_spec(trace, k)["data"]]
    assert any("&#37;{x}" in h for h in hovers) and not any("%{x}" in h for h in hovers)


@pytest.mark.parametrize("sample", ["tree-sampling", "tree-greedy"])
def test_the_models_token_sits_apart_from_every_rejected_node(sample: str) -> None:
    """The evaluation model's own token (a correction or a bonus) has a column of its own, under the
    "model's token" tick, level with the path's end: never at a rejected node's position or under the
    tick of a depth where a rejected node's label is."""
    from specviz.trace import load

    trace = load(Path(__file__).resolve().parents[2] / "assets" / "traces" / f"{sample}.json.gz")
    checked = 0
    for k, step in enumerate(trace["steps"]):
        if not step.get("next"):
            continue
        spec = ftree.tree_spec(trace, k)
        model = next(t for t in spec["data"] if t.get("name") == LABELS[step["next"]["kind"]])
        rejected = [
            xy for t in spec["data"] if t.get("name") == LABELS["rejected"] for xy in zip(t["x"], t["y"], strict=True)
        ]
        ticks = dict(zip(spec["layout"]["xaxis"]["tickvals"], spec["layout"]["xaxis"]["ticktext"], strict=True))
        at = (model["x"][0], model["y"][0])
        assert at not in rejected
        assert ticks[at[0]] == "model's token" and all(ticks[x].startswith("depth") for x, _ in rejected)
        assert all(x < at[0] for x, _ in rejected)  # left of its column, so their labels end before it
        checked += bool(rejected)
    assert checked  # the samples have steps with a rejection and the model's token


def test_a_copied_branch_says_so_in_the_hover_and_the_words(target, draft_lm):
    from specviz.drafters.ngram import LookupFallback

    cfg = DecodeConfig(
        rule=make_rule("greedy"), sampling=Sampling(0), max_new_tokens=24, seed=3, tree=TreeShape.parse("2,1")
    )
    drafter = ModelDrafter(draft_lm, target.vocab_size, lookup=LookupFallback(1.0))
    trace = Recording(target, drafter, "", cfg, prompt_ids=PROMPT).run()
    k = next(i for i, s in enumerate(trace["steps"]) if any(nd.get("copied") for nd in s["tree"]["nodes"]))
    hover = json.dumps(ftree.tree_figure(trace, k).to_plotly_json(), ensure_ascii=False)
    assert "copied: the last" in hover
    assert "copied from earlier text" in ftree.tree_words(trace, k)
    rings = [t for t in ftree.tree_figure(trace, k).data if t.name == COPIED_LABEL]
    copies = [nd for nd in trace["steps"][k]["tree"]["nodes"] if nd.get("copied")]
    assert len(rings) == 1 and len(rings[0].x) == len(copies)
    line = fg.timeline_figure(trace, 0, len(trace["steps"]))
    drafts = [d for s in trace["steps"] for d in s["draft"] if d.get("copied")]
    assert sum(len(t.x) for t in line.data if t.name == COPIED_LABEL) == len(drafts)


def test_no_line_runs_through_untested_drafts_to_the_models_token():
    """Newcomer review: a dotted line from the path's end to the evaluation model's token crossed untested drafts
    and read as a path through them; the token stands level with the path's end, unjoined."""
    from specviz.figures.tree import tree_spec
    from specviz.trace import load
    from specviz.ui import traces

    t = load(traces.SAMPLES_DIR / "tree-sampling.json.gz")
    spec = tree_spec(t, 1)
    assert not [d for d in spec["data"] if (d.get("line") or {}).get("dash") == "dot"]
    words = fg.describe_next(t, 1)
    rejected = sum(nd.get("accepted") is False for nd in t["steps"][1]["tree"]["nodes"])
    assert rejected > 1 and f"It replaces the {rejected} rejected drafts at that depth" in words
