"""specviz.teach.player: the data contract between a trace and the browser player (the step-through page and
the lesson file): every step's words, table and figures, equal to what the server pages compute."""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest

from specviz import figures as fg
from specviz.figures import tree as ftree
from specviz.figures.spec import to_figure
from specviz.formats.opener import load_any
from specviz.teach import player
from specviz.trace import load

SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "traces"
DATA = Path(__file__).parents[1] / "data"


def same_figure(player_spec: dict[str, Any], server_spec: dict[str, Any]) -> bool:
    """The player's figure is the server's, with at least the server's margins (set ahead, player._room)."""
    a, b = copy.deepcopy(player_spec), copy.deepcopy(server_spec)
    ma, mb = a["layout"].pop("margin", {}), b["layout"].pop("margin", {})
    return a == b and all(ma.get(k, 0) >= v for k, v in mb.items())


@pytest.fixture(scope="module")
def greedy() -> dict[str, Any]:
    return load(SAMPLES / "greedy.json.gz")


@pytest.fixture(scope="module")
def tree() -> dict[str, Any]:
    return load(SAMPLES / "tree-sampling.json.gz")


def test_every_step_carries_the_servers_words_and_figures(greedy: dict[str, Any]) -> None:
    d = player.player_data(greedy, "greedy", "a line")
    n = len(greedy["steps"])
    assert d["version"] == player.PLAYER_VERSION and d["n"] == n == len(d["steps"]) and d["meta_line"] == "a line"
    for k in (0, n // 2, n - 1):
        s = d["steps"][k]
        assert s["heading"] == player.step_heading(k, n)
        assert s["describe"] == fg.describe_step(greedy, k)
        assert s["next"] == fg.describe_next(greedy, k)
        assert same_figure(s["acceptance"], fg.acceptance_spec(greedy, k))
        to_figure(s["acceptance"])  # plotly accepts it as it is
        g, n_acc = len(greedy["steps"][k]["draft"]), greedy["steps"][k]["n_accepted"]
        dist = s["distributions"]
        assert dist["positions"] == (list(range(g + 1)) if n_acc == g else list(range(g)))
        assert dist["default"] == min(n_acc, dist["positions"][-1])
        assert all(
            same_figure(a, fg.distribution_spec(greedy, k, j))
            for a, j in zip(dist["specs"], dist["positions"], strict=True)
        )
        assert s["tree"] is None


def test_table_rows_are_the_draft_cells(greedy: dict[str, Any]) -> None:
    s = player.player_data(greedy, "g")["steps"][0]
    cells = [c for c in fg.step_cells(greedy, 0) if not c.from_model]
    table = s["table"]
    assert table["columns"][:4] == ["pos", "draft token", "q(x)", "p(x)"] and table["columns"][-2:] == [
        "outcome",
        "the rule's test",
    ]
    assert [r[1] for r in table["rows"]] == [fg.visible(c.token) for c in cells]
    assert [r[-2] for r in table["rows"]] == [fg.LABELS[c.kind] for c in cells]
    assert table["kinds"] == [c.kind for c in cells]
    assert all(re.fullmatch(r"\d\.\d{3}|—", r[2]) for r in table["rows"])


def test_context_counts_the_tokens_generated_before_each_step(greedy: dict[str, Any]) -> None:
    d = player.player_data(greedy, "g")
    prov = fg.provenance(greedy)
    assert len(d["tokens"]) == len(prov)
    for k in (0, 1, 7, len(greedy["steps"]) - 1):
        before = sum(t.step < k for t in prov)
        assert f"and {before} generated" in d["steps"][k]["context"]
        assert sum(t[2] < k for t in d["tokens"]) == before


def test_the_timeline_is_the_whole_trace_and_its_window_the_servers(greedy: dict[str, Any]) -> None:
    d = player.player_data(greedy, "g")
    n = len(greedy["steps"])
    tl = d["timeline"]
    assert same_figure(tl["spec"], fg.timeline_spec(greedy, 0, n))
    assert tl["rows"] == player.TIMELINE_ROWS and tl["highlight"] == fg.TIMELINE_HIGHLIGHT
    # the player's window (player.js svzWindow, height from tl["height"]) is the server's for a step
    start, stop = fg.window(n, 20, tl["rows"])
    server = fg.timeline_spec(greedy, start, stop, 20)
    base, row, scale = tl["height"]
    assert server["layout"]["height"] == int((base + row * (stop - start)) * scale)
    assert server["layout"]["shapes"][0] == {**tl["highlight"], "y0": 19.5, "y1": 20.5}


def test_tree_steps_carry_the_tree_and_its_mask(tree: dict[str, Any]) -> None:
    d = player.player_data(tree, "tree")
    k = next(i for i, s in enumerate(tree["steps"]) if s.get("tree"))
    t = d["steps"][k]["tree"]
    assert same_figure(t["tree"], ftree.tree_spec(tree, k)) and same_figure(t["mask"], ftree.tree_mask_spec(tree, k))
    assert t["words"] == ftree.tree_words(tree, k)


def test_a_tree_step_that_drafted_nothing_draws_no_mask() -> None:
    """Review: the last step of tree-greedy (no nodes: the budget ran out) drew a 1×2 mask of the context
    and the root alone."""
    trace = load(SAMPLES / "tree-greedy.json.gz")
    empty = [k for k, s in enumerate(trace["steps"]) if s.get("tree") is not None and not s["tree"]["nodes"]]
    assert empty, "the sample should keep a tree step without nodes"
    d = player.player_data(trace, "tree")
    assert all(d["steps"][k]["tree"] is None for k in empty)
    assert all(
        d["steps"][k]["tree"] is not None for k, s in enumerate(trace["steps"]) if (s.get("tree") or {}).get("nodes")
    )


def test_a_minimal_trace_has_no_pictures_it_cannot_draw() -> None:
    trace = load_any(DATA / "valid" / "minimal.json")
    d = player.player_data(trace, "minimal")
    gaps = {g.key for g in fg.missing_parts(trace) if g.missing >= g.of}
    for s in d["steps"]:
        assert (s["acceptance"] is None) == ({"p", "q"} <= gaps)
        assert (s["distributions"] is None) == ("top" in gaps)


def test_margins_make_room_for_the_longest_label(greedy: dict[str, Any]) -> None:
    s = player.player_data(greedy, "g")["steps"][0]
    spec = s["distributions"]["specs"][0]
    longest = max(len(html.unescape(y)) for y in spec["data"][0]["y"])
    assert spec["layout"]["margin"]["l"] >= longest * player.CHAR_PX


def test_presentation_scales_every_figure(greedy: dict[str, Any]) -> None:
    plain = player.player_data(greedy, "g")
    big = player.player_data(greedy, "g", presentation=True)
    assert big["presentation"] is True and big["timeline"]["height"][2] > 1
    assert big["steps"][0]["acceptance"]["layout"]["height"] > plain["steps"][0]["acceptance"]["layout"]["height"]
    assert big["steps"][0]["describe"] == plain["steps"][0]["describe"]


def test_pack_round_trips_and_is_plain_base64(greedy: dict[str, Any]) -> None:
    d = player.player_data(greedy, "g")
    packed = player.pack(d)
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", packed)  # nothing that could end a <script> or open a tag
    assert player.unpack(packed) == json.loads(json.dumps(d))
    assert len(packed) < len(json.dumps(d)) / 4


def test_hostile_text_stays_plain_text(greedy: dict[str, Any]) -> None:
    t = copy.deepcopy(greedy)
    attack = "<script>alert(1)</script>\u202e"
    t["steps"][0]["draft"][0]["token"] = attack
    t["prompt"]["text"] = attack
    d = player.player_data(t, attack)
    # plain text for textContent: control and bidi characters shown as escapes, markup left as typed
    assert d["name"] == fg.literal(attack, 200) and "\u202e" not in d["name"]
    assert d["steps"][0]["table"]["rows"][0][1] == fg.visible(attack)
    assert d["prompt"] == fg.literal(attack, 400)
    # in figures the text is escaped for Plotly, which renders a subset of HTML
    assert "<script>" not in json.dumps(d["steps"][0]["acceptance"])
